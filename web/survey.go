package web

import (
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/web/templates"
)

const surveyCSRFCookie = "agentd_survey_csrf"

// surveyRoutes registers the public after-chat survey page. The token in the path is the only
// credential: 192 random bits, stored hashed, good for one answer.
func (s *Server) surveyRoutes(e *echo.Echo) {
	e.GET("/survey/:token", s.handleSurvey)
	e.POST("/survey/:token", s.handleSurveySubmit)
}

func surveyQuestions(form agent.SurveyForm, values map[string]string) []templates.SurveyQuestionView {
	qs := make([]templates.SurveyQuestionView, len(form.Questions))
	for i, q := range form.Questions {
		qs[i] = templates.SurveyQuestionView{ID: q.ID, Label: q.Label, Type: q.Type, Value: values[q.ID]}
	}
	return qs
}

func (s *Server) handleSurvey(c echo.Context) error {
	form, err := s.agents.Survey(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	csrf := newConnID() + newConnID()
	s.setCookie(c, surveyCSRFCookie, csrf, 3600)
	c.Response().Header().Set("Referrer-Policy", "no-referrer") // the token must not leak onwards
	return render(c, http.StatusOK, templates.SurveyPage(c.Param("token"), csrf, surveyQuestions(form, nil), form.Answered, false, ""))
}

func (s *Server) handleSurveySubmit(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	form, err := s.agents.Survey(ctx, token)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	if form.Answered {
		// Checked before the form token: a resubmitted form changes nothing either way.
		return render(c, http.StatusConflict, templates.SurveyPage(token, "", nil, true, false, ""))
	}
	answers := map[string]string{}
	for _, q := range form.Questions {
		answers[q.ID] = c.FormValue("q." + q.ID)
	}
	ck, cerr := c.Cookie(surveyCSRFCookie)
	if cerr != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
		return agentd.Errorf(agentd.EFORBIDDEN, "csrf", "The form expired. Please reload the page and try again.")
	}
	if err := s.agents.SubmitSurvey(ctx, token, answers); err != nil {
		switch agentd.ErrorCode(err) {
		case "survey_answered":
			return render(c, http.StatusConflict, templates.SurveyPage(token, "", nil, true, false, ""))
		case "invalid_argument":
			return render(c, http.StatusBadRequest, templates.SurveyPage(token, ck.Value, surveyQuestions(form, answers), false, false, agentd.ErrorMessage(err)))
		}
		return err
	}
	s.setCookie(c, surveyCSRFCookie, "", -1)
	return render(c, http.StatusOK, templates.SurveyPage(token, "", nil, false, true, ""))
}
