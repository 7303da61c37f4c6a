package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

const assignmentColumns = `a.id, a.interaction_id, a.user_id, a.state, coalesce(a.party_id::text, ''), a.offered_at,
	a.expires_at, a.accepted_at, ` + interactionColumns

func scanAssignment(row pgx.Row) (agent.Assignment, error) {
	var a agent.Assignment
	var state, istate, reason string
	in := &a.Interaction
	err := row.Scan(&a.ID, &a.InteractionID, &a.UserID, &state, &a.PartyID, &a.OfferedAt, &a.ExpiresAt, &a.AcceptedAt,
		&in.ID, &in.ServiceID, &in.ServiceName, &istate, &in.CustomerName, &in.Subject, &in.NextIndex,
		&in.NextSeq, &in.CreatedAt, &in.QueuedAt, &in.EndedAt, &reason, &in.PendingSince)
	a.State, in.State, in.EndReason = agent.AssignmentState(state), chat.State(istate), chat.EndReason(reason)
	return a, err
}

// Assignments returns the agent's offered and active chats (active includes ended chats still
// waiting for wrap-up), oldest first.
func (s *AgentStore) Assignments(ctx context.Context, userID int64) ([]agent.Assignment, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+assignmentColumns+` FROM assignments a
		JOIN interactions i ON i.id = a.interaction_id JOIN services s ON s.id = i.service_id
		WHERE a.user_id = $1 AND a.state IN ('offered', 'active') ORDER BY a.offered_at, a.id`, userID)
	if err != nil {
		return nil, translate(err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.Assignment, error) { return scanAssignment(r) })
	return as, translate(err)
}

// Assignment returns the agent's open (offered or active) assignment for an interaction.
func (s *AgentStore) Assignment(ctx context.Context, userID int64, interactionID string) (agent.Assignment, error) {
	if !validUUID(interactionID) {
		return agent.Assignment{}, errNotYours()
	}
	a, err := scanAssignment(s.db.Pool.QueryRow(ctx, `SELECT `+assignmentColumns+` FROM assignments a
		JOIN interactions i ON i.id = a.interaction_id JOIN services s ON s.id = i.service_id
		WHERE a.user_id = $1 AND a.interaction_id = $2 AND a.state IN ('offered', 'active')`, userID, interactionID))
	return a, translate(err, errNotYours())
}

func errNotYours() error {
	return agentd.Errorf(agentd.EFORBIDDEN, "not_your_chat", "This chat is not assigned to you.")
}

// QueueCounts returns the number of waiting chats per service the agent belongs to.
func (s *AgentStore) QueueCounts(ctx context.Context, userID int64) (map[string]int, error) {
	return s.db.countBy(ctx, `SELECT s.name, count(i.id) FROM user_services us
		JOIN services s ON s.id = us.service_id
		LEFT JOIN interactions i ON i.service_id = s.id AND i.state = 'queued'
		WHERE us.user_id = $1 GROUP BY s.name`, userID)
}

// ServiceStrategy returns a service's strategy by id.
func (s *AgentStore) ServiceStrategy(ctx context.Context, serviceID int64) (agent.Strategy, error) {
	st, err := loadStrategy(ctx, s.db.Pool, serviceID)
	return st, translate(err)
}

// Transfer hands the chat over: the agent's party leaves, its assignment ends as transferred, and
// the chat is queued on the target service or offered to the target agent. The transcript and
// UserData stay with the interaction, so whoever takes it next sees everything.
func (s *AgentStore) Transfer(ctx context.Context, req agent.TransferRequest) ([]chat.Event, error) {
	var events []chat.Event
	err := s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		if in.State != chat.StateActive {
			return agentd.Errorf(agentd.ECONFLICT, "invalid_state", "Only an active chat can be transferred.")
		}
		var assignmentID int64
		var partyID string
		err = tx.QueryRow(ctx, `SELECT id, party_id FROM assignments WHERE interaction_id = $1 AND user_id = $2 AND state = 'active'
			FOR UPDATE`, req.InteractionID, req.UserID).Scan(&assignmentID, &partyID)
		if err != nil {
			return translate(err, errNotYours())
		}
		serviceID := in.ServiceID
		if req.Target.Service != "" {
			if err := tx.QueryRow(ctx, `SELECT id FROM services WHERE name = $1 AND enabled`, req.Target.Service).Scan(&serviceID); err != nil {
				return translate(err, agentd.Errorf(agentd.ENOTFOUND, "service_not_found", "There is no service named %q.", req.Target.Service))
			}
		}
		var target int64
		if req.Target.UserID != 0 {
			if req.Target.UserID == req.UserID {
				return agentd.Errorf(agentd.EINVALID, "invalid_argument", "Choose another agent.")
			}
			var ok bool
			st, err := loadStrategy(ctx, tx, serviceID)
			if err != nil {
				return err
			}
			if target, ok, err = pickAgent(ctx, tx, serviceID, req.InteractionID, req.Target.UserID, req.At, st.DeclineCooldown()); err != nil {
				return err
			}
			if !ok {
				return agentd.Errorf(agentd.ECONFLICT, "agent_unavailable", "That agent is not ready or has no free capacity.")
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE assignments SET state = 'transferred', finished_at = now() WHERE id = $1`, assignmentID); err != nil {
			return err
		}
		party, err := lockedParty(ctx, tx, req.InteractionID, partyID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE parties SET left_at = $2 WHERE id = $1`, partyID, req.At); err != nil {
			return err
		}
		ev, err := appendEvent(ctx, tx, req.InteractionID, chat.EventPartyLeft, &party, "", "", "")
		if err != nil {
			return err
		}
		events = append(events, ev)
		state := "queued"
		if target != 0 {
			state = "offered"
			st, err := loadStrategy(ctx, tx, serviceID)
			if err != nil {
				return err
			}
			// The deadline comes from the caller's clock, the one ExpireOffers compares it with.
			if _, err := tx.Exec(ctx, `INSERT INTO assignments (interaction_id, user_id, state, offered_at, expires_at)
				VALUES ($1, $2, 'offered', $3, $4)`, req.InteractionID, target, req.At, req.At.Add(st.AcceptTimeout())); err != nil {
				return err
			}
			if err := tx.notifyAgent(ctx, target); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE interactions SET state = $2, service_id = $3, queued_at = $4 WHERE id = $1`,
			req.InteractionID, state, serviceID, req.At); err != nil {
			return err
		}
		if err := tx.notifyEvents(ctx, req.InteractionID, ev); err != nil {
			return err
		}
		if err := emitTransfer(ctx, tx, req, serviceID, target); err != nil {
			return err
		}
		for _, id := range []int64{serviceID, in.ServiceID} {
			if err := tx.notifyQueue(ctx, id); err != nil {
				return err
			}
		}
		if err := tx.notifyAgent(ctx, req.UserID); err != nil {
			return err
		}
		return audit(ctx, tx, req.UserID, "chat.transfer", req.InteractionID, map[string]any{"service": req.Target.Service, "user_id": req.Target.UserID})
	})
	return events, err
}

// WrapUp records the disposition and notes, writes Disposition to UserData, and frees the
// agent's capacity, in one commit; a chat the customer ended gets its survey link in that commit
// too (req.Survey). The chat must have ended.
func (s *AgentStore) WrapUp(ctx context.Context, req agent.WrapUpRequest) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		var assignmentID int64
		err = tx.QueryRow(ctx, `SELECT id FROM assignments WHERE interaction_id = $1 AND user_id = $2 AND state = 'active' FOR UPDATE`,
			req.InteractionID, req.UserID).Scan(&assignmentID)
		if err != nil {
			return translate(err, errNotYours())
		}
		if !in.State.Over() {
			return agentd.Errorf(agentd.ECONFLICT, "invalid_state", "End the chat before wrapping it up.")
		}
		st, err := loadStrategy(ctx, tx, in.ServiceID)
		if err != nil {
			return err
		}
		switch {
		case req.Disposition == "" && st.DispositionRequired:
			return agentd.Errorf(agentd.EINVALID, "disposition_required", "Choose a disposition.")
		case req.Disposition != "" && !st.HasDisposition(req.Disposition):
			return agentd.Errorf(agentd.EINVALID, "invalid_disposition", "%q is not a disposition of this service.", req.Disposition)
		}
		if req.Survey != nil && in.State != chat.StateWrapped {
			link, err := attachSurvey(ctx, tx, req.InteractionID, *req.Survey)
			if err != nil {
				return err
			}
			if err := writeStrategyUserData(ctx, tx, req.InteractionID, link, req.Limits); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE assignments SET state = 'done', finished_at = now() WHERE id = $1`, assignmentID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE interactions SET disposition = $2, wrap_notes = $3, wrapped_at = now(),
			state = CASE WHEN state = 'ended' THEN 'wrapped' ELSE state END WHERE id = $1`,
			req.InteractionID, req.Disposition, req.Notes); err != nil {
			return err
		}
		if req.Disposition != "" {
			seq, err := planAndApply(ctx, tx, req.InteractionID, userdata.OwnerAgent, req.AgentName,
				[]userdata.Change{{Key: userdata.KeyDisposition, Value: req.Disposition}}, req.Limits)
			if err != nil {
				return err
			}
			if err := tx.notifySide(ctx, req.InteractionID, seq); err != nil {
				return err
			}
		}
		if err := tx.notifyAgent(ctx, req.UserID); err != nil {
			return err
		}
		who, err := eventAgent(ctx, tx, req.UserID)
		if err != nil {
			return err
		}
		if err := tx.emit(notify.InteractionWrappedUp, req.InteractionID, map[string]any{"agent": who,
			"disposition": req.Disposition, "notes": req.Notes}); err != nil {
			return err
		}
		return audit(ctx, tx, req.UserID, "chat.wrap_up", req.InteractionID, map[string]any{"disposition": req.Disposition})
	})
}

// RecentChats returns the chats the agent finished most recently, with disposition and CSAT.
func (s *AgentStore) RecentChats(ctx context.Context, userID int64, limit int) ([]agent.RecentChat, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT ON (i.id) i.id, i.customer_name, coalesce(i.ended_at, a.finished_at, a.offered_at),
			i.disposition, coalesce(r.answers->>'CSAT', '')
		FROM assignments a JOIN interactions i ON i.id = a.interaction_id
		LEFT JOIN survey_responses r ON r.interaction_id = i.id
		WHERE a.user_id = $1 AND a.state IN ('done', 'transferred')
		ORDER BY i.id, a.finished_at DESC`, userID)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.RecentChat, error) {
		var c agent.RecentChat
		return c, r.Scan(&c.InteractionID, &c.Customer, &c.EndedAt, &c.Disposition, &c.CSAT)
	})
	if err != nil {
		return nil, translate(err)
	}
	slices.SortFunc(out, func(a, b agent.RecentChat) int { return b.EndedAt.Compare(a.EndedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Handled reports whether the agent was ever assigned the interaction.
func (s *AgentStore) Handled(ctx context.Context, userID int64, interactionID string) (bool, error) {
	if !validUUID(interactionID) {
		return false, nil
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM assignments WHERE user_id = $1 AND interaction_id = $2)`,
		userID, interactionID).Scan(&ok)
	return ok, translate(err)
}

// WrapInfo returns an interaction's disposition and wrap-up notes.
func (s *AgentStore) WrapInfo(ctx context.Context, interactionID string) (disposition, notes string, err error) {
	if !validUUID(interactionID) {
		return "", "", errSessionNotFound()
	}
	err = s.db.Pool.QueryRow(ctx, `SELECT disposition, wrap_notes FROM interactions WHERE id = $1`, interactionID).Scan(&disposition, &notes)
	return disposition, notes, translate(err)
}
