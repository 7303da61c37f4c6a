package admin

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"agentd/agent"
	"agentd/web/templates"
)

// The admin service form writes a strategy as text fields, one entry per line. These functions
// convert between that text and agent.Strategy; the domain validates the values
// (agent.ServiceChange.Validate), these only check that the text has the documented shape.

// serviceForm shows a stored service in the form.
func serviceForm(si agent.ServiceInfo, st agent.Strategy) templates.AdminServiceForm {
	f := templates.AdminServiceForm{
		Name: si.Name, DisplayName: si.DisplayName, Enabled: si.Enabled,
		WelcomeNotice: st.WelcomeNotice, AcceptTimeout: formSeconds(st.AcceptTimeoutSeconds), AutoAnswer: st.AutoAnswer,
		DeclineCooldown: formSeconds(st.DeclineCooldownSeconds),
		Dispositions:    strings.Join(st.Dispositions, "\n"), DispositionRequired: st.DispositionRequired,
		PendingWarn: formSeconds(st.PendingWarnSeconds), PendingLate: formSeconds(st.PendingLateSeconds),
		VisibleUserData: strings.Join(st.VisibleUserData, "\n"), SurveyWhen: "routed",
	}
	if sv := st.Survey; sv != nil {
		f.SurveyEnabled, f.SurveyURL = true, sv.URLTemplate
		if sv.When != "" {
			f.SurveyWhen = sv.When
		}
		lines := make([]string, len(sv.Questions))
		for i, q := range sv.Questions {
			lines[i] = q.ID + "|" + q.Label + "|" + q.Type
		}
		f.SurveyQuestions = strings.Join(lines, "\n")
	}
	lines := make([]string, 0, len(st.RoutedUserData))
	for _, k := range slices.Sorted(maps.Keys(st.RoutedUserData)) {
		lines = append(lines, k+"="+st.RoutedUserData[k])
	}
	f.RoutedUserData = strings.Join(lines, "\n")
	return f
}

func formSeconds(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// parseServiceForm reads the posted form: the text as typed (to show it again), the change it
// describes, and the fields whose text has the wrong shape.
func parseServiceForm(name string, form url.Values) (templates.AdminServiceForm, agent.ServiceChange, map[string]string) {
	f := templates.AdminServiceForm{
		Name: name, DisplayName: form.Get("display_name"), Enabled: formChecked(form, "enabled"),
		WelcomeNotice: form.Get("welcome_notice"), AcceptTimeout: form.Get("accept_timeout"), AutoAnswer: formChecked(form, "auto_answer"),
		DeclineCooldown: form.Get("decline_cooldown"),
		Dispositions:    form.Get("dispositions"), DispositionRequired: formChecked(form, "disposition_required"),
		SurveyEnabled: formChecked(form, "survey_enabled"), SurveyWhen: form.Get("survey_when"), SurveyURL: form.Get("survey_url"),
		SurveyQuestions: form.Get("survey_questions"), RoutedUserData: form.Get("routed_userdata"), VisibleUserData: form.Get("visible_userdata"),
		PendingWarn: form.Get("pending_warn"), PendingLate: form.Get("pending_late"),
	}
	errs := map[string]string{}
	seconds := func(field, s string) int {
		s = strings.TrimSpace(s)
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			errs[field] = "Enter a whole number of seconds."
		}
		return n
	}
	st := agent.Strategy{
		WelcomeNotice:          strings.TrimSpace(formNewlines(f.WelcomeNotice)),
		AcceptTimeoutSeconds:   seconds("accept_timeout", f.AcceptTimeout),
		DeclineCooldownSeconds: seconds("decline_cooldown", f.DeclineCooldown),
		AutoAnswer:             f.AutoAnswer,
		Dispositions:           formLines(f.Dispositions),
		DispositionRequired:    f.DispositionRequired,
		VisibleUserData:        formLines(f.VisibleUserData),
		PendingWarnSeconds:     seconds("pending_warn", f.PendingWarn),
		PendingLateSeconds:     seconds("pending_late", f.PendingLate),
	}
	if f.SurveyEnabled {
		qs, err := parseQuestionLines(f.SurveyQuestions)
		if err != "" {
			errs["survey_questions"] = err
		}
		st.Survey = &agent.Survey{When: f.SurveyWhen, URLTemplate: strings.TrimSpace(f.SurveyURL), Questions: qs}
	}
	routed, err := parseKeyValueLines(f.RoutedUserData)
	if err != "" {
		errs["routed_userdata"] = err
	}
	if len(routed) > 0 {
		st.RoutedUserData = routed
	}
	return f, agent.ServiceChange{DisplayName: f.DisplayName, Enabled: f.Enabled, Strategy: st}, errs
}

func formChecked(form url.Values, name string) bool {
	v := form.Get(name)
	return v == "on" || v == "true" || v == "1"
}

func formNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// lines returns the non-empty lines of a textarea, trimmed.
func formLines(s string) []string {
	var out []string
	for _, l := range strings.Split(formNewlines(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseQuestions reads "id|label|type" lines. The label may itself contain "|".
func parseQuestionLines(s string) ([]agent.SurveyQuestion, string) {
	var qs []agent.SurveyQuestion
	for i, l := range formLines(s) {
		first, last := strings.Index(l, "|"), strings.LastIndex(l, "|")
		if first < 0 || first == last {
			return nil, fmt.Sprintf("Line %d: write id|label|scale or id|label|text.", i+1)
		}
		qs = append(qs, agent.SurveyQuestion{
			ID:    strings.TrimSpace(l[:first]),
			Label: strings.TrimSpace(l[first+1 : last]),
			Type:  strings.ToLower(strings.TrimSpace(l[last+1:])),
		})
	}
	return qs, ""
}

// parseKeyValues reads "KEY=template" lines; the value may contain "=".
func parseKeyValueLines(s string) (map[string]string, string) {
	m := map[string]string{}
	for i, l := range formLines(s) {
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Sprintf("Line %d: write KEY=value.", i+1)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Sprintf("The key %q is listed twice.", k)
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, ""
}
