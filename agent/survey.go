package agent

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"agentd"
	"agentd/userdata"
)

// SurveyStore is what Surveys needs from storage.
type SurveyStore interface {
	SurveyByToken(ctx context.Context, hash []byte) (SurveyTarget, error)
	ServiceStrategy(ctx context.Context, serviceID int64) (Strategy, error)
	SubmitSurvey(ctx context.Context, hash []byte, answers map[string]string, lim userdata.Limits) (string, error)
}

// SurveyForm is what the survey page shows.
type SurveyForm struct {
	Questions []SurveyQuestion
	Answered  bool
}

// Surveys is the after-chat survey a customer answers through the link in SurveyURL.
type Surveys struct {
	store  SurveyStore
	limits userdata.Limits
}

// SurveysDeps is what Surveys is built from.
type SurveysDeps struct {
	Store  SurveyStore
	Limits userdata.Limits // the UserData limits the answers are written under
}

// NewSurveys returns the survey service.
func NewSurveys(d SurveysDeps) *Surveys { return &Surveys{store: d.Store, limits: d.Limits} }

// Survey returns the survey behind a token.
func (s *Surveys) Survey(ctx context.Context, token string) (SurveyForm, error) {
	t, err := s.store.SurveyByToken(ctx, HashToken(token))
	if err != nil {
		return SurveyForm{}, err
	}
	st, err := s.store.ServiceStrategy(ctx, t.ServiceID)
	if err != nil {
		return SurveyForm{}, err
	}
	return SurveyForm{Questions: st.Questions(), Answered: t.Answered}, nil
}

// SubmitSurvey validates and stores the answers of a survey, once; the answers and their
// Survey.* UserData commit together.
func (s *Surveys) SubmitSurvey(ctx context.Context, token string, answers map[string]string) error {
	form, err := s.Survey(ctx, token)
	if err != nil {
		return err
	}
	clean := map[string]string{}
	for _, q := range form.Questions {
		v := strings.TrimSpace(answers[q.ID])
		switch {
		case v == "":
			continue
		case q.Type == "scale":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return agentd.Errorf(agentd.EINVALID, "invalid_argument", "%s: choose a value from 1 to 5.", q.Label)
			}
		case !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 || utf8.RuneCountInString(v) > 2000:
			return agentd.Errorf(agentd.EINVALID, "invalid_argument", "%s: at most 2000 characters of text.", q.Label)
		}
		clean[q.ID] = v
	}
	if len(clean) == 0 {
		return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Please answer at least one question.")
	}
	_, err = s.store.SubmitSurvey(ctx, HashToken(token), clean, s.limits)
	return err
}
