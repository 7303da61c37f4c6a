package agent

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"agentd"
)

// wantInvalid fails unless err is an EINVALID error with code invalid_argument whose message
// contains msgPart (so the test knows which rule refused the value).
func wantInvalid(t *testing.T, err error, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want invalid_argument (%q), got nil", msgPart)
	}
	if c := agentd.ErrorClass(err); c != agentd.EINVALID {
		t.Errorf("class = %q, want %q (err %v)", c, agentd.EINVALID, err)
	}
	if c := agentd.ErrorCode(err); c != "invalid_argument" {
		t.Errorf("code = %q, want invalid_argument (err %v)", c, err)
	}
	if m := agentd.ErrorMessage(err); !strings.Contains(m, msgPart) {
		t.Errorf("message = %q, want it to contain %q", m, msgPart)
	}
}

func TestParseStrategy(t *testing.T) {
	full := `{
		"welcome_notice": "Welcome!",
		"accept_timeout_seconds": 45,
		"auto_answer": true,
		"dispositions": ["Sale", "No sale"],
		"disposition_required": true,
		"routed_userdata": {"Queue": "{service}"},
		"visible_userdata": ["Queue"],
		"survey": {"when": "ended", "url_template": "https://s.example/{token}",
			"questions": [{"id": "NPS", "label": "Recommend us?", "type": "scale"}]},
		"pending_warn_seconds": 30,
		"pending_late_seconds": 90,
		"some_future_key": {"x": 1}
	}`
	want := Strategy{
		WelcomeNotice:        "Welcome!",
		AcceptTimeoutSeconds: 45,
		AutoAnswer:           true,
		Dispositions:         []string{"Sale", "No sale"},
		DispositionRequired:  true,
		RoutedUserData:       map[string]string{"Queue": "{service}"},
		VisibleUserData:      []string{"Queue"},
		Survey: &Survey{When: "ended", URLTemplate: "https://s.example/{token}",
			Questions: []SurveyQuestion{{ID: "NPS", Label: "Recommend us?", Type: "scale"}}},
		PendingWarnSeconds: 30,
		PendingLateSeconds: 90,
	}

	tests := []struct {
		name    string
		raw     string
		want    Strategy
		wantErr string // part of the message; "" means no error
	}{
		{name: "OK_Empty", raw: "", want: Strategy{}},
		{name: "OK_EmptyObject", raw: "{}", want: Strategy{}},
		{name: "OK_Full", raw: full, want: want},
		{name: "OK_UnknownKeysIgnored", raw: `{"x_custom": [1, 2], "auto_answer": true}`, want: Strategy{AutoAnswer: true}},
		{name: "ErrNotJSON", raw: `{"auto_answer": tru`, wantErr: "The strategy is not valid JSON"},
		{name: "ErrWrongType", raw: `{"accept_timeout_seconds": "30"}`, wantErr: "The strategy is not valid JSON"},
		{name: "ErrNotObject", raw: `[1]`, wantErr: "The strategy is not valid JSON"},
		{name: "ErrInvalidValue", raw: `{"accept_timeout_seconds": 601}`, wantErr: "Accept timeout"},
		{name: "ErrInvalidSurveyWhen", raw: `{"survey": {"when": "later"}}`, wantErr: `Survey "when"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStrategy([]byte(tt.raw))
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("ParseStrategy: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestStrategyValidate(t *testing.T) {
	tests := []struct {
		name    string
		st      Strategy
		wantErr string // part of the message; "" means valid
	}{
		{name: "OK_Zero", st: Strategy{}},
		{name: "OK_AcceptTimeoutMax", st: Strategy{AcceptTimeoutSeconds: 600}},
		{name: "OK_AcceptTimeoutMin", st: Strategy{AcceptTimeoutSeconds: 1}},
		{name: "ErrAcceptTimeoutNegative", st: Strategy{AcceptTimeoutSeconds: -1}, wantErr: "Accept timeout must be between 0 and 600 seconds."},
		{name: "ErrAcceptTimeoutTooLong", st: Strategy{AcceptTimeoutSeconds: 601}, wantErr: "Accept timeout must be between 0 and 600 seconds."},
		{name: "OK_Dispositions", st: Strategy{Dispositions: []string{"Sale", strings.Repeat("x", 100)}}},
		{name: "ErrDispositionEmpty", st: Strategy{Dispositions: []string{"Sale", ""}}, wantErr: "Dispositions must be 1 to 100 characters."},
		{name: "ErrDispositionBlank", st: Strategy{Dispositions: []string{" \t"}}, wantErr: "Dispositions must be 1 to 100 characters."},
		{name: "ErrDispositionTooLong", st: Strategy{Dispositions: []string{strings.Repeat("x", 101)}}, wantErr: "Dispositions must be 1 to 100 characters."},
		// Characters, not bytes: 100 two-byte letters are fine.
		{name: "OK_DispositionNonASCII", st: Strategy{Dispositions: []string{strings.Repeat("é", 100)}}},
		{name: "ErrDispositionNonASCIITooLong", st: Strategy{Dispositions: []string{strings.Repeat("é", 101)}}, wantErr: "Dispositions must be 1 to 100 characters."},
		{name: "OK_DispositionRequiredWithList", st: Strategy{DispositionRequired: true, Dispositions: []string{"Sale"}}},
		{name: "ErrDispositionRequiredWithoutList", st: Strategy{DispositionRequired: true}, wantErr: "A mandatory disposition needs a list of dispositions."},
		{name: "OK_SurveyWhenEmpty", st: Strategy{Survey: &Survey{}}},
		{name: "OK_SurveyWhenRouted", st: Strategy{Survey: &Survey{When: "routed"}}},
		{name: "OK_SurveyWhenEnded", st: Strategy{Survey: &Survey{When: "ended"}}},
		{name: "ErrSurveyWhenUnknown", st: Strategy{Survey: &Survey{When: "Routed"}}, wantErr: `Survey "when" must be routed or ended.`},
		{name: "OK_SurveyQuestions", st: Strategy{Survey: &Survey{Questions: []SurveyQuestion{
			{ID: "CSAT", Label: "How?", Type: "scale"}, {ID: "Why", Label: "Why?", Type: "text"}}}}},
		{name: "ErrQuestionNoID", st: Strategy{Survey: &Survey{Questions: []SurveyQuestion{{Label: "How?", Type: "scale"}}}},
			wantErr: "Every survey question needs an id, a label and a type (scale or text)."},
		{name: "ErrQuestionNoLabel", st: Strategy{Survey: &Survey{Questions: []SurveyQuestion{{ID: "CSAT", Type: "scale"}}}},
			wantErr: "Every survey question needs an id, a label and a type (scale or text)."},
		{name: "ErrQuestionNoType", st: Strategy{Survey: &Survey{Questions: []SurveyQuestion{{ID: "CSAT", Label: "How?"}}}},
			wantErr: "Every survey question needs an id, a label and a type (scale or text)."},
		{name: "ErrQuestionUnknownType", st: Strategy{Survey: &Survey{Questions: []SurveyQuestion{{ID: "CSAT", Label: "How?", Type: "stars"}}}},
			wantErr: "Every survey question needs an id, a label and a type (scale or text)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.st.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantInvalid(t, err, tt.wantErr)
		})
	}
}

func TestStrategyAcceptTimeout(t *testing.T) {
	tests := []struct {
		seconds int
		want    time.Duration
	}{
		{0, 30 * time.Second},
		{1, time.Second},
		{45, 45 * time.Second},
		{600, 10 * time.Minute},
	}
	for _, tt := range tests {
		if got := (Strategy{AcceptTimeoutSeconds: tt.seconds}).AcceptTimeout(); got != tt.want {
			t.Errorf("AcceptTimeout(%d) = %v, want %v", tt.seconds, got, tt.want)
		}
	}
	if DefaultAcceptTimeout != 30*time.Second || DefaultPendingWarn != time.Minute || DefaultPendingLate != 3*time.Minute {
		t.Errorf("defaults = %v, %v, %v; want 30s, 1m, 3m", DefaultAcceptTimeout, DefaultPendingWarn, DefaultPendingLate)
	}
}

func TestStrategySurveyWhen(t *testing.T) {
	tests := []struct {
		name   string
		survey *Survey
		want   string
	}{
		{"NoSurvey", nil, ""},
		{"DefaultRouted", &Survey{}, "routed"},
		{"Routed", &Survey{When: "routed"}, "routed"},
		{"Ended", &Survey{When: "ended"}, "ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Strategy{Survey: tt.survey}).SurveyWhen(); got != tt.want {
				t.Errorf("SurveyWhen = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStrategyQuestions(t *testing.T) {
	custom := []SurveyQuestion{{ID: "NPS", Label: "Recommend us?", Type: "scale"}}
	tests := []struct {
		name   string
		survey *Survey
		want   []SurveyQuestion
	}{
		{"NoSurvey", nil, DefaultSurveyQuestions},
		{"NoQuestions", &Survey{When: "ended"}, DefaultSurveyQuestions},
		{"EmptyQuestions", &Survey{Questions: []SurveyQuestion{}}, DefaultSurveyQuestions},
		{"Custom", &Survey{Questions: custom}, custom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Strategy{Survey: tt.survey}).Questions(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Questions = %+v, want %+v", got, tt.want)
			}
		})
	}
	// The defaults are a 1-5 CSAT scale and a free-text comment.
	want := []SurveyQuestion{
		{ID: "CSAT", Label: "How satisfied are you with this chat?", Type: "scale"},
		{ID: "Comment", Label: "Anything you would like to tell us?", Type: "text"},
	}
	if !reflect.DeepEqual(DefaultSurveyQuestions, want) {
		t.Errorf("DefaultSurveyQuestions = %+v", DefaultSurveyQuestions)
	}
	if err := (Strategy{Survey: &Survey{Questions: DefaultSurveyQuestions}}).Validate(); err != nil {
		t.Errorf("the default questions do not validate: %v", err)
	}
}

func TestStrategyHasDisposition(t *testing.T) {
	st := Strategy{Dispositions: []string{"Sale", "No sale"}}
	tests := []struct {
		d    string
		want bool
	}{
		{"Sale", true},
		{"No sale", true},
		{"sale", false},
		{"Sale ", false},
		{"", false},
		{"Other", false},
	}
	for _, tt := range tests {
		if got := st.HasDisposition(tt.d); got != tt.want {
			t.Errorf("HasDisposition(%q) = %v, want %v", tt.d, got, tt.want)
		}
	}
	if (Strategy{}).HasDisposition("") {
		t.Error(`a strategy without dispositions has disposition ""`)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"interactionId": "abc123", "service": "sales", "surveyUrl": "https://x.example/survey/t"}
	tests := []struct {
		name string
		tmpl string
		vars map[string]string
		want string
	}{
		{"NoPlaceholders", "plain text", vars, "plain text"},
		{"One", "id={interactionId}", vars, "id=abc123"},
		{"Several", "{service}/{interactionId}?s={surveyUrl}", vars, "sales/abc123?s=https://x.example/survey/t"},
		{"Repeated", "{service}-{service}", vars, "sales-sales"},
		{"UnknownKept", "{token} {service}", vars, "{token} sales"},
		{"CaseSensitive", "{Service}", vars, "{Service}"},
		{"NoBraces", "service", vars, "service"},
		{"NilVars", "{service}", nil, "{service}"},
		{"EmptyValue", "[{service}]", map[string]string{"service": ""}, "[]"},
		{"EmptyTemplate", "", vars, ""},
		// One pass: a value that looks like a placeholder stays as it is, whatever the map order.
		{"ValueNotExpandedAgain", "{a}{b}", map[string]string{"a": "{b}", "b": "{a}"}, "{b}{a}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Expand(tt.tmpl, tt.vars); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

// The zero strategy marshals to an empty object: every field is omitempty, which mergeStrategy
// relies on to drop keys the admin cleared.
func TestStrategyJSONOmitsZeroValues(t *testing.T) {
	b, err := json.Marshal(Strategy{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{}" {
		t.Errorf("json.Marshal(Strategy{}) = %s, want {}", b)
	}
	b, err = json.Marshal(Strategy{AutoAnswer: true, Survey: &Survey{When: "ended"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"auto_answer":true,"survey":{"when":"ended"}}`; string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
}
