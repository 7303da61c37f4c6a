package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"agentd"
	"agentd/userdata"
)

const correctFields = "Please correct the highlighted fields."

// wantFields fails unless err is an *InvalidFields (EINVALID, invalid_argument) whose fields are
// exactly the given ones.
func wantFields(t *testing.T, err error, fields ...string) map[string]string {
	t.Helper()
	if err == nil {
		t.Fatalf("want invalid fields %v, got nil", fields)
	}
	if agentd.ErrorClass(err) != agentd.EINVALID || agentd.ErrorCode(err) != "invalid_argument" || agentd.ErrorMessage(err) != correctFields {
		t.Errorf("err %v: want class invalid, code invalid_argument, message %q", err, correctFields)
	}
	got := FieldsOf(err)
	if got == nil {
		t.Fatalf("err %v is not an *InvalidFields", err)
	}
	slices.Sort(fields)
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, fields) {
		t.Errorf("fields %q, want %q (messages %q)", keys, fields, got)
	}
	return got
}

func TestFieldErrors(t *testing.T) {
	f := fieldErrors{}
	if err := f.err(); err != nil {
		t.Fatalf("empty fieldErrors.err() = %v, want nil", err)
	}
	f.add("a", nil)
	if len(f) != 0 {
		t.Fatalf("a nil error was recorded: %v", f)
	}
	f.add("a", agentd.Errorf(agentd.EINVALID, "invalid_argument", "first"))
	f.addf("a", "second %d", 2)
	f.addf("b", "b is %s", "bad")
	f.add("c", errors.New("secret internal detail"))
	want := fieldErrors{"a": "first", "b": "b is bad", "c": "Internal error."}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("fieldErrors = %q, want %q (first message wins, internal errors hidden)", f, want)
	}
	got := wantFields(t, f.err(), "a", "b", "c")
	if got["a"] != "first" {
		t.Errorf(`a = %q`, got["a"])
	}
}

func TestInvalidFieldsAndFieldsOf(t *testing.T) {
	err := (fieldErrors{"name": "Bad name."}).err()
	var inv *InvalidFields
	if !errors.As(err, &inv) {
		t.Fatalf("%T is not an *InvalidFields", err)
	}
	var ae *agentd.Error
	if !errors.As(err, &ae) || ae.Class != agentd.EINVALID || ae.Code != "invalid_argument" || ae.Message != correctFields {
		t.Errorf("wrapped error %+v", ae)
	}
	if u := errors.Unwrap(err); !errors.Is(u, inv.err) || u.Error() != inv.err.Error() {
		t.Error("Unwrap does not return the *agentd.Error")
	}
	if err.Error() != inv.err.Error() || !strings.Contains(err.Error(), correctFields) {
		t.Errorf("Error() = %q", err.Error())
	}

	tests := []struct {
		name string
		err  error
		want map[string]string
	}{
		{"Nil", nil, nil},
		{"Plain", errors.New("x"), nil},
		{"AgentdError", agentd.Errorf(agentd.EINVALID, "invalid_argument", "x"), nil},
		{"InvalidFields", err, map[string]string{"name": "Bad name."}},
		{"Wrapped", fmt.Errorf("save: %w", err), map[string]string{"name": "Bad name."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FieldsOf(tt.err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FieldsOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOnField(t *testing.T) {
	exists := agentd.Errorf(agentd.ECONFLICT, "service_exists", "A service with this name exists.")
	other := agentd.Errorf(agentd.ECONFLICT, "other", "Other.")
	internal := errors.New("db down")
	if onField(nil, "name", "service_exists") != nil {
		t.Error("onField(nil) != nil")
	}
	// Unchanged: the same error, not a wrapped copy of it.
	if got := onField(other, "name", "service_exists"); !errors.Is(got, other) || got.Error() != other.Error() {
		t.Errorf("an error with another code changed: %v", got)
	}
	if got := onField(internal, "name", "service_exists"); !errors.Is(got, internal) || got.Error() != internal.Error() {
		t.Errorf("an internal error changed: %v", got)
	}
	got := wantFields(t, onField(exists, "name", "x", "service_exists"), "name")
	if got["name"] != "A service with this name exists." {
		t.Errorf("name = %q", got["name"])
	}
}

func TestIsOneLineIsText(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		max     int
		oneLine bool
		text    bool
	}{
		{"Empty", "", 5, true, true},
		{"ASCII", "hello", 5, true, true},
		{"TooLong", "hello!", 5, false, false},
		{"RunesNotBytes", "ééééé", 5, true, true},
		{"Newline", "a\nb", 5, false, true},
		{"CR", "a\rb", 5, false, true},
		{"Tab", "a\tb", 5, false, true},
		{"DEL", "a\x7fb", 5, false, true},
		{"C1Control", "a\u0085b", 5, false, true},
		{"NUL", "a\x00b", 5, false, false},
		{"InvalidUTF8", "a\xffb", 5, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isOneLine(tt.s, tt.max); got != tt.oneLine {
				t.Errorf("isOneLine(%q, %d) = %v, want %v", tt.s, tt.max, got, tt.oneLine)
			}
			if got := isText(tt.s, tt.max); got != tt.text {
				t.Errorf("isText(%q, %d) = %v, want %v", tt.s, tt.max, got, tt.text)
			}
		})
	}
}

func TestCreateServiceRequestValidate(t *testing.T) {
	tests := []struct {
		name, svc, display string
		fields             []string // nil means valid
	}{
		{name: "OK", svc: "sales", display: "Sales"},
		{name: "OK_Trimmed", svc: "  sales\t", display: "  Sales team  "},
		{name: "OK_OneChar", svc: "a", display: "A"},
		{name: "OK_DigitFirst", svc: "0day", display: "Zero"},
		{name: "OK_UnderscoreDash", svc: "b2b_sales-eu", display: "B2B"},
		{name: "OK_Name63", svc: strings.Repeat("a", 63), display: "Long"},
		{name: "OK_Display100", svc: "s", display: strings.Repeat("é", 100)},
		{name: "ErrNameEmpty", svc: "", display: "Sales", fields: []string{"name"}},
		{name: "ErrName64", svc: strings.Repeat("a", 64), display: "Sales", fields: []string{"name"}},
		{name: "ErrNameUpper", svc: "Sales", display: "Sales", fields: []string{"name"}},
		{name: "ErrNameDashFirst", svc: "-sales", display: "Sales", fields: []string{"name"}},
		{name: "ErrNameUnderscoreFirst", svc: "_sales", display: "Sales", fields: []string{"name"}},
		{name: "ErrNameDot", svc: "sales.eu", display: "Sales", fields: []string{"name"}},
		{name: "ErrNameSpace", svc: "sales eu", display: "Sales", fields: []string{"name"}},
		{name: "ErrNameNonASCII", svc: "ventés", display: "Sales", fields: []string{"name"}},
		{name: "ErrDisplayEmpty", svc: "sales", display: "  ", fields: []string{"display_name"}},
		{name: "ErrDisplay101", svc: "sales", display: strings.Repeat("é", 101), fields: []string{"display_name"}},
		{name: "ErrDisplayNewline", svc: "sales", display: "Sales\nteam", fields: []string{"display_name"}},
		{name: "ErrDisplayTab", svc: "sales", display: "Sales\tteam", fields: []string{"display_name"}},
		{name: "ErrBoth", svc: "Sales!", display: "", fields: []string{"name", "display_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CreateServiceRequest{Name: tt.svc, DisplayName: tt.display}
			err := r.Validate()
			if tt.fields != nil {
				got := wantFields(t, err, tt.fields...)
				if slices.Contains(tt.fields, "name") && !strings.HasPrefix(got["name"], "The name must be 1 to 63 characters") {
					t.Errorf("name message %q", got["name"])
				}
				if slices.Contains(tt.fields, "display_name") && got["display_name"] != "The display name must be one line of 1 to 100 characters." {
					t.Errorf("display_name message %q", got["display_name"])
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v (%v)", err, FieldsOf(err))
			}
			if r.Name != strings.TrimSpace(tt.svc) || r.DisplayName != strings.TrimSpace(tt.display) {
				t.Errorf("not trimmed: %q, %q", r.Name, r.DisplayName)
			}
		})
	}
}

func TestServiceChangeValidate(t *testing.T) {
	q := func(id, label, typ string) SurveyQuestion { return SurveyQuestion{ID: id, Label: label, Type: typ} }
	tests := []struct {
		name   string
		ch     ServiceChange
		fields []string // nil means valid
		// subset: fields must contain (not equal) the listed ones.
		subset bool
		// msg, when set, is part of the message of fields[0].
		msg string
	}{
		{name: "OK_Minimal", ch: ServiceChange{DisplayName: "Sales"}},
		{name: "OK_Full", ch: ServiceChange{DisplayName: " Sales ", Enabled: true, Strategy: Strategy{
			WelcomeNotice:        "Welcome!\nAn agent will be with you shortly.",
			AcceptTimeoutSeconds: 600,
			AutoAnswer:           true,
			Dispositions:         []string{"Sale", "No sale"},
			DispositionRequired:  true,
			RoutedUserData:       map[string]string{"Queue": "{service}", "Survey": "{surveyUrl}"},
			VisibleUserData:      []string{"Queue"},
			Survey: &Survey{When: "ended", URLTemplate: "https://s.example/{token}",
				Questions: []SurveyQuestion{q("NPS", "Recommend us?", "scale"), q("Why_1", "Why?", "text")}},
			PendingWarnSeconds: 30,
			PendingLateSeconds: maxPendingSecs,
		}}},
		{name: "ErrDisplayNameEmpty", ch: ServiceChange{DisplayName: " "}, fields: []string{"display_name"}},
		{name: "ErrDisplayNameNewline", ch: ServiceChange{DisplayName: "a\nb"}, fields: []string{"display_name"}},

		{name: "OK_WelcomeNotice1000", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{WelcomeNotice: strings.Repeat("é", 1000)}}},
		{name: "ErrWelcomeNotice1001", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{WelcomeNotice: strings.Repeat("é", 1001)}},
			fields: []string{"welcome_notice"}, msg: "at most 1000 characters"},
		{name: "ErrWelcomeNoticeNUL", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{WelcomeNotice: "Hi\x00"}}, fields: []string{"welcome_notice"}},
		{name: "ErrWelcomeNoticeInvalidUTF8", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{WelcomeNotice: "Hi\xff"}}, fields: []string{"welcome_notice"}},

		{name: "ErrAcceptTimeoutNegative", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{AcceptTimeoutSeconds: -1}},
			fields: []string{"accept_timeout"}, msg: "Accept timeout must be between 0 and 600 seconds."},
		{name: "ErrAcceptTimeout601", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{AcceptTimeoutSeconds: 601}}, fields: []string{"accept_timeout"}},

		{name: "ErrDispositionDuplicate", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Dispositions: []string{"Sale", "Other", "Sale"}}},
			fields: []string{"dispositions"}, msg: `The disposition "Sale" is listed twice.`},
		{name: "ErrDispositionControl", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Dispositions: []string{"Sale\tnow"}}},
			fields: []string{"dispositions"}, msg: "Each disposition must be one line of at most 100 characters."},
		{name: "ErrDispositionEmpty", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Dispositions: []string{""}}},
			fields: []string{"dispositions"}, subset: true, msg: "Dispositions must be 1 to 100 characters."},
		{name: "ErrDispositionRequiredWithoutList", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{DispositionRequired: true}},
			fields: []string{"disposition_required"}, msg: "A mandatory disposition needs a list of dispositions."},
		// A bad disposition is reported on the list only, not on the unrelated checkbox.
		{name: "ErrDispositionTooLongNotRequired", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Dispositions: []string{strings.Repeat("x", 101)}}},
			fields: []string{"dispositions"}},
		{name: "OK_DispositionNonASCII", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Dispositions: []string{strings.Repeat("é", 60)}}}},

		{name: "OK_SurveyDefaults", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{}}}},
		{name: "OK_SurveyHTTP", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "http://s.example/{token}"}}}},
		{name: "ErrSurveyWhen", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{When: "never"}}},
			fields: []string{"survey_when"}, msg: `Survey "when" must be routed or ended.`},
		{name: "ErrSurveyURLScheme", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "javascript:alert(1)"}}},
			fields: []string{"survey_url"}, msg: "The survey URL must start with https:// or http://"},
		{name: "ErrSurveyURLRelative", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "/survey/{token}"}}}, fields: []string{"survey_url"}},
		{name: "ErrSurveyURLNewline", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "https://s.example/\n"}}}, fields: []string{"survey_url"}},
		{name: "ErrSurveyURLTooLong", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "https://" + strings.Repeat("a", 1993)}}}, fields: []string{"survey_url"}},
		{name: "OK_SurveyURL2000", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{URLTemplate: "https://" + strings.Repeat("a", 1992)}}}},
		{name: "ErrQuestionNoType", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("A", "L", "")}}}},
			fields: []string{"survey_questions"}, msg: "Every survey question needs an id, a label and a type (scale or text)."},
		{name: "ErrQuestionIDChars", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("a-b", "L", "text")}}}},
			fields: []string{"survey_questions"}, msg: `Question id "a-b" must be 1 to 64 letters, digits or '_'`},
		{name: "ErrQuestionID65", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q(strings.Repeat("a", 65), "L", "text")}}}},
			fields: []string{"survey_questions"}, msg: "must be 1 to 64 letters"},
		{name: "OK_QuestionID64", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q(strings.Repeat("a", 64), "L", "text")}}}}},
		{name: "ErrQuestionDuplicateID", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("A", "L", "text"), q("A", "M", "scale")}}}},
			fields: []string{"survey_questions"}, msg: `The question id "A" is used twice.`},
		{name: "ErrQuestionLabel201", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("A", strings.Repeat("é", 201), "text")}}}},
			fields: []string{"survey_questions"}, msg: "Question labels must be one line of at most 200 characters."},
		{name: "OK_QuestionLabel200", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("A", strings.Repeat("é", 200), "text")}}}}},
		{name: "ErrQuestionLabelNewline", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("A", "L\nM", "text")}}}},
			fields: []string{"survey_questions"}, msg: "Question labels must be one line"},
		// The first message of a field wins: the id rule fires before the duplicate rule.
		{name: "ErrQuestionFirstMessageWins", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{Survey: &Survey{Questions: []SurveyQuestion{q("a b", "L", "text"), q("a b", "L", "text")}}}},
			fields: []string{"survey_questions"}, msg: `Question id "a b" must be`},

		{name: "ErrRoutedKeyEmpty", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"": "x"}}},
			fields: []string{"routed_userdata"}, msg: "UserData key must not be empty."},
		{name: "ErrRoutedKeyControl", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"a\nb": "x"}}},
			fields: []string{"routed_userdata"}, msg: "contains a control character"},
		{name: "ErrRoutedKeyTooLong", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{strings.Repeat("k", 129): "x"}}},
			fields: []string{"routed_userdata"}, msg: "UserData key is longer than 128 characters."},
		{name: "ErrRoutedKeyReserved", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{userdata.ReservedPrefix + "x": "x"}}},
			fields: []string{"routed_userdata"}, msg: `Keys starting with "_agentd." are reserved for agentd.`},
		{name: "ErrRoutedValueNUL", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"K": "a\x00"}}},
			fields: []string{"routed_userdata"}, msg: `UserData "K": value contains a NUL character.`},
		{name: "ErrRoutedValueInvalidUTF8", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"K": "a\xff"}}},
			fields: []string{"routed_userdata"}, msg: `UserData "K": value is not valid UTF-8.`},
		// The limit is on the value as written, encoded JSON: quotes and escapes count.
		{name: "ErrRoutedValueLongOnceEncoded", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"K": strings.Repeat("x", 4095)}}},
			fields: []string{"routed_userdata"}, msg: `UserData "K": value is longer than 4096 bytes.`},
		{name: "ErrRoutedValueEscapesCount", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"K": strings.Repeat("<", 700)}}},
			fields: []string{"routed_userdata"}, msg: `value is longer than 4096 bytes.`},
		{name: "OK_RoutedValueMultiline", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"K": "a\nb"}}}},
		// Keys are checked in sorted order, so the message is deterministic.
		{name: "ErrRoutedSortedFirstWins", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"B": "\x00", "A": "\x00"}}},
			fields: []string{"routed_userdata"}, msg: `UserData "A"`},

		{name: "ErrVisibleNotRouted", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{RoutedUserData: map[string]string{"Queue": "q"}, VisibleUserData: []string{"Queue", "Other"}}},
			fields: []string{"visible_userdata"}, msg: `"Other" is not one of the routed UserData keys.`},
		{name: "ErrVisibleWithoutRouted", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{VisibleUserData: []string{"Queue"}}}, fields: []string{"visible_userdata"}},

		{name: "OK_PendingDefaults", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{}}},
		{name: "OK_PendingWarnBelowDefaultLate", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: 179}}},
		{name: "OK_PendingLateAboveDefaultWarn", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingLateSeconds: 61}}},
		{name: "ErrPendingWarnNegative", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: -1}},
			fields: []string{"pending_warn"}, msg: "Must be between 0 and 86400 seconds (0: the default)."},
		{name: "ErrPendingWarnTooLong", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: 86401, PendingLateSeconds: 86400}}, fields: []string{"pending_warn"}},
		{name: "ErrPendingLateNegative", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingLateSeconds: -5}}, fields: []string{"pending_late"}},
		{name: "ErrPendingBothOutOfRange", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: -1, PendingLateSeconds: 86401}}, fields: []string{"pending_warn", "pending_late"}},
		{name: "ErrPendingWarnAfterDefaultLate", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: 200}},
			fields: []string{"pending_late"}, msg: "The late threshold (180s) must come after the warning threshold (200s)."},
		{name: "ErrPendingWarnEqualsDefaultLate", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: 180}}, fields: []string{"pending_late"}},
		{name: "ErrPendingLateBeforeDefaultWarn", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingLateSeconds: 60}},
			fields: []string{"pending_late"}, msg: "The late threshold (60s) must come after the warning threshold (60s)."},
		{name: "ErrPendingLateBeforeWarn", ch: ServiceChange{DisplayName: "S", Strategy: Strategy{PendingWarnSeconds: 20, PendingLateSeconds: 10}}, fields: []string{"pending_late"}},

		{name: "ErrSeveral", ch: ServiceChange{DisplayName: "", Strategy: Strategy{AcceptTimeoutSeconds: 700, Survey: &Survey{When: "x", URLTemplate: "ftp://x"}}},
			fields: []string{"display_name", "accept_timeout", "survey_when", "survey_url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := tt.ch
			err := ch.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate: %v %q", err, FieldsOf(err))
				}
				if ch.DisplayName != strings.TrimSpace(tt.ch.DisplayName) {
					t.Errorf("display name %q not trimmed", ch.DisplayName)
				}
				return
			}
			var got map[string]string
			if tt.subset {
				got = FieldsOf(err)
				for _, f := range tt.fields {
					if got[f] == "" {
						t.Errorf("no message for %q in %q", f, got)
					}
				}
			} else {
				got = wantFields(t, err, tt.fields...)
			}
			if tt.msg != "" && !strings.Contains(got[tt.fields[0]], tt.msg) {
				t.Errorf("%s = %q, want it to contain %q", tt.fields[0], got[tt.fields[0]], tt.msg)
			}
		})
	}
}

func TestEffectiveSeconds(t *testing.T) {
	if got := effectiveSeconds(0, DefaultPendingWarn); got != 60 {
		t.Errorf("effectiveSeconds(0, 60s) = %d", got)
	}
	if got := effectiveSeconds(0, DefaultPendingLate); got != 180 {
		t.Errorf("effectiveSeconds(0, 180s) = %d", got)
	}
	if got := effectiveSeconds(42, DefaultPendingLate); got != 42 {
		t.Errorf("effectiveSeconds(42, 180s) = %d", got)
	}
}

func TestCannedResponseValidate(t *testing.T) {
	tests := []struct {
		name              string
		c                 CannedResponse
		fields            []string // nil means valid
		wantTitle, wantBd string
	}{
		{name: "OK", c: CannedResponse{Title: "Greeting", Body: "Hello!"}, wantTitle: "Greeting", wantBd: "Hello!"},
		{name: "OK_TrimsAndNormalises", c: CannedResponse{ServiceID: 2, Title: "  Greeting \t", Body: "  Hello\r\nWorld \r\n\n\t "},
			wantTitle: "Greeting", wantBd: "  Hello\nWorld"},
		{name: "OK_Title200", c: CannedResponse{Title: strings.Repeat("é", 200), Body: "b"}, wantTitle: strings.Repeat("é", 200), wantBd: "b"},
		{name: "OK_Body4000", c: CannedResponse{Title: "t", Body: strings.Repeat("é", 4000)}, wantTitle: "t", wantBd: strings.Repeat("é", 4000)},
		{name: "OK_Body4000AfterTrim", c: CannedResponse{Title: "t", Body: strings.Repeat("é", 4000) + "\n\n  "}, wantTitle: "t", wantBd: strings.Repeat("é", 4000)},
		{name: "ErrTitleEmpty", c: CannedResponse{Title: "   ", Body: "b"}, fields: []string{"title"}},
		{name: "ErrTitle201", c: CannedResponse{Title: strings.Repeat("é", 201), Body: "b"}, fields: []string{"title"}},
		{name: "ErrTitleNewline", c: CannedResponse{Title: "a\nb", Body: "b"}, fields: []string{"title"}},
		{name: "ErrBodyEmpty", c: CannedResponse{Title: "t", Body: ""}, fields: []string{"body"}},
		{name: "ErrBodyBlank", c: CannedResponse{Title: "t", Body: " \r\n\t\n"}, fields: []string{"body"}},
		{name: "ErrBody4001", c: CannedResponse{Title: "t", Body: strings.Repeat("é", 4001)}, fields: []string{"body"}},
		{name: "ErrBodyNUL", c: CannedResponse{Title: "t", Body: "a\x00b"}, fields: []string{"body"}},
		{name: "ErrBodyInvalidUTF8", c: CannedResponse{Title: "t", Body: "a\xffb"}, fields: []string{"body"}},
		{name: "ErrServiceNegative", c: CannedResponse{ServiceID: -1, Title: "t", Body: "b"}, fields: []string{"service"}},
		{name: "ErrAll", c: CannedResponse{ServiceID: -3}, fields: []string{"title", "body", "service"}},
	}
	msgs := map[string]string{
		"title":   "The title must be one line of 1 to 200 characters.",
		"body":    "The text must have 1 to 4000 characters.",
		"service": "Choose a service from the list.",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			err := c.Validate()
			if tt.fields != nil {
				got := wantFields(t, err, tt.fields...)
				for _, f := range tt.fields {
					if got[f] != msgs[f] {
						t.Errorf("%s = %q, want %q", f, got[f], msgs[f])
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v %q", err, FieldsOf(err))
			}
			if c.Title != tt.wantTitle || c.Body != tt.wantBd {
				t.Errorf("title %q body %q; want %q, %q", c.Title, c.Body, tt.wantTitle, tt.wantBd)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		pw   string
		want string // "" means accepted
	}{
		{"12345678", ""},
		{strings.Repeat("é", 8), ""},
		{strings.Repeat("p", 72), ""},
		{"", "The password must have at least 8 characters."},
		{"1234567", "The password must have at least 8 characters."},
		{strings.Repeat("p", 73), "The password must be at most 72 bytes."},
		{strings.Repeat("é", 37), "The password must be at most 72 bytes."},
	}
	for _, tt := range tests {
		f := fieldErrors{}
		validatePassword(f, "new_password", tt.pw)
		if tt.want == "" {
			if len(f) != 0 {
				t.Errorf("password of %d bytes refused: %q", len(tt.pw), f)
			}
			continue
		}
		if len(f) != 1 || f["new_password"] != tt.want {
			t.Errorf("password of %d bytes: %q, want new_password: %q", len(tt.pw), f, tt.want)
		}
	}
}

func TestValidateProfile(t *testing.T) {
	tests := []struct {
		name     string
		display  string
		role     Role
		capacity int
		fields   []string // nil means valid
	}{
		{name: "OK", display: "Alice", role: RoleAgent, capacity: 3},
		{name: "OK_EmptyDisplayName", display: "", role: RoleAdmin, capacity: 0},
		{name: "OK_Capacity50", display: strings.Repeat("é", 100), role: RoleSupervisor, capacity: 50},
		{name: "ErrDisplayName101", display: strings.Repeat("é", 101), role: RoleAgent, fields: []string{"display_name"}},
		{name: "ErrDisplayNameTab", display: "Al\tice", role: RoleAgent, fields: []string{"display_name"}},
		{name: "ErrRole", display: "Alice", role: "boss", fields: []string{"role"}},
		{name: "ErrRoleEmpty", display: "Alice", role: "", fields: []string{"role"}},
		{name: "ErrCapacityNegative", display: "Alice", role: RoleAgent, capacity: -1, fields: []string{"capacity"}},
		{name: "ErrCapacity51", display: "Alice", role: RoleAgent, capacity: 51, fields: []string{"capacity"}},
		{name: "ErrAll", display: "a\nb", role: "x", capacity: 99, fields: []string{"display_name", "role", "capacity"}},
	}
	msgs := map[string]string{
		"display_name": "The display name must be one line of at most 100 characters.",
		"role":         "Role must be agent, supervisor or admin.",
		"capacity":     "Capacity must be between 0 and 50 chats.",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fieldErrors{}
			validateProfile(f, tt.display, tt.role, tt.capacity)
			if tt.fields == nil {
				if len(f) != 0 {
					t.Fatalf("refused: %q", f)
				}
				return
			}
			got := wantFields(t, f.err(), tt.fields...)
			for _, k := range tt.fields {
				if got[k] != msgs[k] {
					t.Errorf("%s = %q, want %q", k, got[k], msgs[k])
				}
			}
		})
	}
}

func TestStrategyKeys(t *testing.T) {
	want := []string{"welcome_notice", "accept_timeout_seconds", "decline_cooldown_seconds", "auto_answer", "dispositions", "disposition_required",
		"routed_userdata", "visible_userdata", "survey", "pending_warn_seconds", "pending_late_seconds"}
	if !slices.Equal(strategyKeys, want) {
		t.Errorf("strategyKeys = %q, want %q", strategyKeys, want)
	}
}

func TestJSONEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{`1`, `1.0`, true},
		{`"x"`, `"x"`, true},
		{`"x"`, `"y"`, false},
		{`[1,2]`, `[2,1]`, false},
		{`true`, `"true"`, false},
		// An absent key and a zero value are the same to a strategy (its JSON omits zeros).
		{`null`, `{}`, true},
		{`false`, `0`, true},
		{`false`, `true`, false},
		{`{"a":0}`, `{}`, false},
		{``, ``, true},
		{`{bad`, `{bad`, true},
		{`{bad`, `{bad }`, false},
	}
	for _, tt := range tests {
		if got := jsonEqual(json.RawMessage(tt.a), json.RawMessage(tt.b)); got != tt.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMergeStrategy(t *testing.T) {
	tests := []struct {
		name        string
		stored      string
		st          Strategy
		wantJSON    string
		wantChanges string // JSON of the changes map
	}{
		{name: "EmptyToEmpty", stored: "", st: Strategy{}, wantJSON: `{}`, wantChanges: `{}`},
		{name: "EmptyObjectToEmpty", stored: "{}", st: Strategy{}, wantJSON: `{}`, wantChanges: `{}`},
		{name: "NewKeys", stored: `{}`, st: Strategy{WelcomeNotice: "Hi", AcceptTimeoutSeconds: 45},
			wantJSON:    `{"welcome_notice":"Hi","accept_timeout_seconds":45}`,
			wantChanges: `{"welcome_notice":{"old":null,"new":"Hi"},"accept_timeout_seconds":{"old":null,"new":45}}`},
		{name: "KeepsUnknownKeys", stored: `{"x_custom":{"a":[1,2]},"welcome_notice":"Hi"}`, st: Strategy{WelcomeNotice: "Hello"},
			wantJSON:    `{"x_custom":{"a":[1,2]},"welcome_notice":"Hello"}`,
			wantChanges: `{"welcome_notice":{"old":"Hi","new":"Hello"}}`},
		{name: "RemovesClearedKeys", stored: `{"auto_answer":true,"dispositions":["A"],"x":1}`, st: Strategy{},
			wantJSON:    `{"x":1}`,
			wantChanges: `{"auto_answer":{"old":true,"new":null},"dispositions":{"old":["A"],"new":null}}`},
		{name: "UnchangedDespiteFormatting", stored: `{"dispositions": [ "A", "B" ], "survey": {"questions": [], "when": "ended"}}`,
			st:          Strategy{Dispositions: []string{"A", "B"}, Survey: &Survey{When: "ended"}},
			wantJSON:    `{"dispositions":["A","B"],"survey":{"when":"ended"}}`,
			wantChanges: `{"survey":{"old":{"questions":[],"when":"ended"},"new":{"when":"ended"}}}`},
		{name: "SameValueNoChange", stored: `{"accept_timeout_seconds":30,"pending_warn_seconds":10}`, st: Strategy{AcceptTimeoutSeconds: 30, PendingWarnSeconds: 10},
			wantJSON: `{"accept_timeout_seconds":30,"pending_warn_seconds":10}`, wantChanges: `{}`},
		// A stored JSON null is no strategy yet (it used to panic).
		{name: "StoredNull", stored: `null`, st: Strategy{AutoAnswer: true},
			wantJSON: `{"auto_answer":true}`, wantChanges: `{"auto_answer":{"old":null,"new":true}}`},
		// A stored explicit zero is what the form shows as unset: saving it again changes nothing.
		{name: "StoredZeroNoChange", stored: `{"auto_answer":false,"accept_timeout_seconds":0,"dispositions":[]}`, st: Strategy{},
			wantJSON: `{}`, wantChanges: `{}`},
		{name: "NestedChange", stored: `{"routed_userdata":{"A":"1","B":"2"}}`, st: Strategy{RoutedUserData: map[string]string{"A": "1", "B": "3"}},
			wantJSON:    `{"routed_userdata":{"A":"1","B":"3"}}`,
			wantChanges: `{"routed_userdata":{"old":{"A":"1","B":"2"},"new":{"A":"1","B":"3"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, changes, err := mergeStrategy(json.RawMessage(tt.stored), tt.st)
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, "merged", raw, tt.wantJSON)
			cb, err := json.Marshal(changes)
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, "changes", cb, tt.wantChanges)
			// What was merged reads back as the strategy that was written.
			back, err := ParseStrategy(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.st) {
				t.Errorf("read back %+v, want %+v", back, tt.st)
			}
		})
	}

	for _, stored := range []string{`{bad`, `[]`, `"x"`, `{"welcome_notice":1}x`} {
		if _, _, err := mergeStrategy(json.RawMessage(stored), Strategy{}); err == nil {
			t.Errorf("mergeStrategy(%s) accepted an unreadable stored strategy", stored)
		}
	}
}

func assertJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %s is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}
