package postgres

import (
	"context"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
)

// An agent's operations on a chat it works: each is one unit of work that composes the chat
// store's XxxTx methods with the agent side's own rows (audit, survey token), so nothing is ever
// half written and a retried operation finds either all of it or none.

// lockAgentChat locks an interaction (the lock order starts there) and returns it with the
// agent's party in it: the agent must hold an accepted (active) assignment on it.
func lockAgentChat(ctx context.Context, tx *Tx, userID int64, interactionID string) (chat.Interaction, string, error) {
	in, err := lockInteraction(ctx, tx, interactionID)
	if err != nil {
		return in, "", err
	}
	var state, partyID string
	err = tx.QueryRow(ctx, `SELECT state, coalesce(party_id::text, '') FROM assignments
		WHERE interaction_id = $1 AND user_id = $2 AND state IN ('offered', 'active')`, interactionID, userID).Scan(&state, &partyID)
	if err != nil {
		return in, "", translate(err, errNotYours())
	}
	if state != string(agent.AssignActive) || partyID == "" {
		return in, "", agentd.Errorf(agentd.ECONFLICT, "not_accepted", "Accept the chat first.")
	}
	return in, partyID, nil
}

// End ends a chat on behalf of its agent: the agent's party leaves and the session ends with
// reason agent; with req.Survey the chat's survey link is attached in the same commit. Ending a
// chat that has ended already changes nothing.
func (s *AgentStore) End(ctx context.Context, req agent.EndRequest) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		in, partyID, err := lockAgentChat(ctx, tx, req.UserID, req.InteractionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			return nil
		}
		if req.Survey != nil {
			link, err := attachSurvey(ctx, tx, req.InteractionID, *req.Survey)
			if err != nil {
				return err
			}
			if err := writeStrategyUserData(ctx, tx, req.InteractionID, link, req.Limits); err != nil {
				return err
			}
		}
		_, err = s.chats.LeavePartyTx(ctx, tx, chat.LeaveRequest{InteractionID: req.InteractionID, PartyID: partyID,
			End: true, Reason: chat.EndAgent, At: req.At})
		return err
	})
}

// ChangeUserData applies an agent's UserData edit and its audit row in one commit. A retried
// command (same command id) answers as the first did and is audited once. An ended chat is
// read-only until its wrap-up (which writes Disposition itself): a new edit is session_ended.
func (s *AgentStore) ChangeUserData(ctx context.Context, req agent.UserDataEdit) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		in, partyID, err := lockAgentChat(ctx, tx, req.UserID, req.InteractionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			var prev changeResult
			found, err := commandDone(ctx, tx, partyID, req.CommandID, &prev)
			if err != nil {
				return err
			}
			if !found {
				return errEnded()
			}
		}
		res, err := s.chats.ChangeUserDataTx(ctx, tx, chat.UserDataRequest{InteractionID: req.InteractionID, PartyID: partyID,
			CommandID: req.CommandID, Actor: userdata.OwnerAgent, ActorName: req.AgentName, Changes: req.Changes, Limits: req.Limits})
		if err != nil || res.Replayed {
			return err
		}
		keys := make([]string, len(req.Changes))
		for i, c := range req.Changes {
			keys[i] = c.Key
		}
		return audit(ctx, tx, req.UserID, "userdata.change", req.InteractionID, map[string]any{"keys": keys})
	})
}

// CoBrowseJoined records that the agent's console opened a co-browse session: req.Decide looks
// at the chat's UserData under the row lock and says what to write; the agent's keys, agentd's
// own key, the notice to the customer and the audit row then commit together.
func (s *AgentStore) CoBrowseJoined(ctx context.Context, req agent.CoBrowseRequest) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		_, partyID, err := lockAgentChat(ctx, tx, req.UserID, req.InteractionID)
		if err != nil {
			return err
		}
		entries, err := loadUserData(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		w, err := req.Decide(entries)
		if err != nil || w == nil {
			return err
		}
		if _, err := s.chats.ChangeUserDataTx(ctx, tx, chat.UserDataRequest{InteractionID: req.InteractionID, PartyID: partyID,
			Actor: userdata.OwnerAgent, ActorName: req.AgentName, Changes: w.AgentKeys, Limits: req.Limits}); err != nil {
			return err
		}
		seq, err := planAndApply(ctx, tx, req.InteractionID, userdata.OwnerSystem, "cobrowse", w.SystemKeys, req.Limits)
		if err != nil {
			return err
		}
		if err := tx.notifySide(ctx, req.InteractionID, seq); err != nil {
			return err
		}
		if _, err := s.chats.AddNoticeTx(ctx, tx, chat.NoticeRequest{InteractionID: req.InteractionID, PartyID: partyID, Payload: w.Notice}); err != nil {
			return err
		}
		if err := emitCoBrowseJoined(ctx, tx, req.InteractionID, req.UserID, entries); err != nil {
			return err
		}
		return audit(ctx, tx, req.UserID, "cobrowse.joined", req.InteractionID, w.Audit)
	})
}
