package agent

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"agentd"
)

// Strategy is a service's routing strategy: the part of services.strategy the agent side reads.
// (The chat core reads welcome_notice from the same JSON object.)
type Strategy struct {
	WelcomeNotice        string `json:"welcome_notice,omitempty"`
	AcceptTimeoutSeconds int    `json:"accept_timeout_seconds,omitempty"`
	// DeclineCooldownSeconds is how long a chat an agent declined is not offered to that agent
	// again; after it, the chat may come back to them when no one else can take it.
	DeclineCooldownSeconds int      `json:"decline_cooldown_seconds,omitempty"`
	AutoAnswer             bool     `json:"auto_answer,omitempty"`
	Dispositions           []string `json:"dispositions,omitempty"`
	DispositionRequired    bool     `json:"disposition_required,omitempty"`
	// UserData attached when the chat is routed to an agent, key → value template. Templates may
	// use {interactionId}, {service} and {surveyUrl}.
	RoutedUserData map[string]string `json:"routed_userdata,omitempty"`
	// VisibleUserData lists the keys of RoutedUserData the customer may read.
	VisibleUserData []string `json:"visible_userdata,omitempty"`
	Survey          *Survey  `json:"survey,omitempty"`
	// PendingWarnSeconds and PendingLateSeconds are when a customer message waiting for an answer
	// turns the console's indicator to warning and to late.
	PendingWarnSeconds int `json:"pending_warn_seconds,omitempty"`
	PendingLateSeconds int `json:"pending_late_seconds,omitempty"`
}

// Survey configures the after-chat survey of a service.
type Survey struct {
	// When is "routed" or "ended": when the SurveyURL key is written.
	When string `json:"when,omitempty"`
	// URLTemplate points at an external survey ({token}, {interactionId}); empty means agentd's
	// own page /survey/{token}.
	URLTemplate string           `json:"url_template,omitempty"`
	Questions   []SurveyQuestion `json:"questions,omitempty"`
}

// SurveyQuestion is one question of agentd's own survey page.
type SurveyQuestion struct {
	ID    string `json:"id"`    // UserData key suffix: answers land in Survey.<ID>
	Label string `json:"label"` // shown to the customer
	Type  string `json:"type"`  // "scale" (1-5) or "text"
}

// DefaultSurveyQuestions are asked when a survey has none configured.
var DefaultSurveyQuestions = []SurveyQuestion{
	{ID: "CSAT", Label: "How satisfied are you with this chat?", Type: "scale"},
	{ID: "Comment", Label: "Anything you would like to tell us?", Type: "text"},
}

// Defaults of a strategy.
const (
	DefaultAcceptTimeout   = 30 * time.Second
	DefaultDeclineCooldown = 2 * time.Minute
	DefaultPendingWarn     = 60 * time.Second
	DefaultPendingLate     = 180 * time.Second
)

// ParseStrategy decodes and validates a strategy.
func ParseStrategy(raw []byte) (Strategy, error) {
	var s Strategy
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return Strategy{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "The strategy is not valid JSON for a strategy: %v", err)
		}
	}
	return s, s.Validate()
}

// Validate checks a strategy's values.
func (s Strategy) Validate() error {
	if s.AcceptTimeoutSeconds < 0 || s.AcceptTimeoutSeconds > 600 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Accept timeout must be between 0 and 600 seconds.")
	}
	if s.DeclineCooldownSeconds < 0 || s.DeclineCooldownSeconds > 3600 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Decline cool-down must be between 0 and 3600 seconds.")
	}
	for _, d := range s.Dispositions {
		if strings.TrimSpace(d) == "" || utf8.RuneCountInString(d) > 100 {
			return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Dispositions must be 1 to 100 characters.")
		}
	}
	if s.DispositionRequired && len(s.Dispositions) == 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "A mandatory disposition needs a list of dispositions.")
	}
	if s.Survey != nil {
		switch s.Survey.When {
		case "", "routed", "ended":
		default:
			return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Survey \"when\" must be routed or ended.")
		}
		for _, q := range s.Survey.Questions {
			if q.ID == "" || q.Label == "" || (q.Type != "scale" && q.Type != "text") {
				return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Every survey question needs an id, a label and a type (scale or text).")
			}
		}
	}
	return nil
}

// DeclineCooldown returns how long a declined chat stays away from the agent who declined it.
func (s Strategy) DeclineCooldown() time.Duration {
	if s.DeclineCooldownSeconds == 0 {
		return DefaultDeclineCooldown
	}
	return time.Duration(s.DeclineCooldownSeconds) * time.Second
}

// AcceptTimeout returns the offer timeout.
func (s Strategy) AcceptTimeout() time.Duration {
	if s.AcceptTimeoutSeconds == 0 {
		return DefaultAcceptTimeout
	}
	return time.Duration(s.AcceptTimeoutSeconds) * time.Second
}

// SurveyWhen returns when the survey URL is attached ("routed" by default).
func (s Strategy) SurveyWhen() string {
	if s.Survey == nil {
		return ""
	}
	if s.Survey.When == "" {
		return "routed"
	}
	return s.Survey.When
}

// Questions returns the survey questions.
func (s Strategy) Questions() []SurveyQuestion {
	if s.Survey == nil || len(s.Survey.Questions) == 0 {
		return DefaultSurveyQuestions
	}
	return s.Survey.Questions
}

// HasDisposition reports whether d is one of the service's dispositions.
func (s Strategy) HasDisposition(d string) bool {
	for _, x := range s.Dispositions {
		if x == d {
			return true
		}
	}
	return false
}

// Expand fills a template's placeholders in one pass: a value that looks like a placeholder is
// never expanded again, whatever the order of vars.
func Expand(tmpl string, vars map[string]string) string {
	pairs := make([]string, 0, 2*len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		pairs = append(pairs, "{"+k+"}", vars[k])
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}
