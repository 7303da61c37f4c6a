// Package survey is the customer's after-chat survey page, /survey/{token}, reached through the
// link agentd writes to the chat's SurveyURL. The token in the path is the only credential: 192
// random bits, stored hashed, good for one answer.
package survey

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/web"
	"agentd/web/templates"
)

const surveyCSRFCookie = "agentd_survey_csrf"

// formLimit is the survey form's body limit: ten text answers of 2000 characters each, at the
// worst URL-encoding (12 bytes a character), fit.
const formLimit = 256 << 10

// Surveys is what the survey page needs from the agent side (agent.Surveys).
type Surveys interface {
	Survey(ctx context.Context, token string) (agent.SurveyForm, error)
	SubmitSurvey(ctx context.Context, token string, answers map[string]string) error
}

// Deps is what the survey surface is built from.
type Deps struct {
	Surveys Surveys
	Cookies web.Cookies
}

// Surface serves /survey/{token}.
type Surface struct {
	surveys Surveys
	cookies web.Cookies
}

// New returns the survey surface.
func New(d Deps) *Surface { return &Surface{surveys: d.Surveys, cookies: d.Cookies} }

// Register adds the survey routes; they are public.
func (s *Surface) Register(e *echo.Echo) {
	e.GET("/survey/:token", s.handleSurvey)
	e.POST("/survey/:token", s.handleSurveySubmit, web.BodyLimit(formLimit))
}

func surveyQuestions(form agent.SurveyForm, values map[string]string) []templates.SurveyQuestionView {
	qs := make([]templates.SurveyQuestionView, len(form.Questions))
	for i, q := range form.Questions {
		qs[i] = templates.SurveyQuestionView{ID: q.ID, Label: q.Label, Type: q.Type, Value: values[q.ID]}
	}
	return qs
}

func (s *Surface) handleSurvey(c echo.Context) error {
	form, err := s.surveys.Survey(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	csrf := web.NewToken()
	s.cookies.Set(c, surveyCSRFCookie, csrf, 3600)
	c.Response().Header().Set("Referrer-Policy", "no-referrer") // the token must not leak onwards
	return web.Render(c, http.StatusOK, templates.SurveyPage(c.Param("token"), csrf, surveyQuestions(form, nil), form.Answered, false, ""))
}

func (s *Surface) handleSurveySubmit(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	form, err := s.surveys.Survey(ctx, token)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	if form.Answered {
		// Checked before the form token: a resubmitted form changes nothing either way.
		return web.Render(c, http.StatusConflict, templates.SurveyPage(token, "", nil, true, false, ""))
	}
	answers := map[string]string{}
	for _, q := range form.Questions {
		answers[q.ID] = c.FormValue("q." + q.ID)
	}
	ck, cerr := c.Cookie(surveyCSRFCookie)
	if cerr != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
		return agentd.Errorf(agentd.EFORBIDDEN, "csrf", "The form expired. Please reload the page and try again.")
	}
	if err := s.surveys.SubmitSurvey(ctx, token, answers); err != nil {
		switch agentd.ErrorCode(err) {
		case "survey_answered":
			return web.Render(c, http.StatusConflict, templates.SurveyPage(token, "", nil, true, false, ""))
		case "invalid_argument":
			return web.Render(c, http.StatusBadRequest, templates.SurveyPage(token, ck.Value, surveyQuestions(form, answers), false, false, agentd.ErrorMessage(err)))
		}
		return err
	}
	s.cookies.Set(c, surveyCSRFCookie, "", -1)
	return web.Render(c, http.StatusOK, templates.SurveyPage(token, "", nil, false, true, ""))
}
