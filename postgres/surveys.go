package postgres

import (
	"context"
	"maps"
	"slices"

	"agentd"
	"agentd/agent"
	"agentd/notify"
	"agentd/userdata"
)

func errSurveyNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "survey_not_found", "This survey link is not valid.")
}

// SurveyByToken finds the interaction of a survey token hash.
func (s *AgentStore) SurveyByToken(ctx context.Context, hash []byte) (agent.SurveyTarget, error) {
	var t agent.SurveyTarget
	err := s.db.Pool.QueryRow(ctx, `SELECT i.id, i.service_id, EXISTS (SELECT 1 FROM survey_responses r WHERE r.interaction_id = i.id)
		FROM interactions i WHERE i.survey_token_hash = $1`, hash).Scan(&t.InteractionID, &t.ServiceID, &t.Answered)
	return t, translate(err, errSurveyNotFound())
}

// SubmitSurvey stores the answers of a survey once and writes them to UserData, in one commit.
func (s *AgentStore) SubmitSurvey(ctx context.Context, hash []byte, answers map[string]string, lim userdata.Limits) (string, error) {
	var interactionID string
	err := s.c.InTx(ctx, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `SELECT id FROM interactions WHERE survey_token_hash = $1 FOR UPDATE`, hash).Scan(&interactionID)
		if err != nil {
			return translate(err, errSurveyNotFound())
		}
		tag, err := tx.Exec(ctx, `INSERT INTO survey_responses (interaction_id, answers) VALUES ($1, $2) ON CONFLICT DO NOTHING`, interactionID, answers)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return agentd.Errorf(agentd.ECONFLICT, "survey_answered", "This survey has already been answered. Thank you!")
		}
		changes := make([]userdata.Change, 0, len(answers))
		for _, k := range slices.Sorted(maps.Keys(answers)) {
			changes = append(changes, userdata.Change{Key: "Survey." + k, Value: answers[k]})
		}
		seq, err := planAndApply(ctx, tx, interactionID, userdata.OwnerSystem, "survey", changes, lim)
		if err != nil {
			return err
		}
		if err := tx.emit(notify.SurveySubmitted, interactionID, map[string]any{"answers": answers}); err != nil {
			return err
		}
		return tx.notifySide(ctx, interactionID, seq)
	})
	return interactionID, err
}

// SurveyAnswers returns the stored survey answers of an interaction, if any.
func (s *AgentStore) SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error) {
	if !validUUID(interactionID) {
		return nil, false, nil
	}
	var answers map[string]string
	err := s.db.Pool.QueryRow(ctx, `SELECT answers FROM survey_responses WHERE interaction_id = $1`, interactionID).Scan(&answers)
	if noRows(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, translate(err)
	}
	return answers, true, nil
}
