package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/chat"
)

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const partyColumns = `p.id, p.interaction_id, p.type, p.name, p.user_ref, p.joined_at, p.left_at`

func scanParty(row pgx.Row) (chat.Party, error) {
	var p chat.Party
	var typ string
	err := row.Scan(&p.ID, &p.InteractionID, &typ, &p.Name, &p.UserRef, &p.JoinedAt, &p.LeftAt)
	p.Type = chat.PartyType(typ)
	return p, err
}

func insertParty(ctx context.Context, tx pgx.Tx, interactionID string, typ chat.PartyType, name, userRef string) (chat.Party, error) {
	return scanParty(tx.QueryRow(ctx, `INSERT INTO parties AS p (interaction_id, type, name, user_ref)
		VALUES ($1, $2, $3, $4) RETURNING `+partyColumns, interactionID, typ, name, userRef))
}

func clientParty(ctx context.Context, q querier, interactionID string) (chat.Party, error) {
	return scanParty(q.QueryRow(ctx, `SELECT `+partyColumns+` FROM parties p
		WHERE p.interaction_id = $1 AND p.type = 'client' ORDER BY p.joined_at LIMIT 1`, interactionID))
}

// Party returns a party by id.
func (s *ChatStore) Party(ctx context.Context, id string) (chat.Party, error) {
	if !validUUID(id) {
		return chat.Party{}, agentd.Errorf(agentd.ENOTFOUND, "not_found", "No such party.")
	}
	p, err := scanParty(s.db.Pool.QueryRow(ctx, `SELECT `+partyColumns+` FROM parties p WHERE p.id = $1`, id))
	return p, translate(err)
}

// lockedParty returns a party of a locked interaction that has not left.
func lockedParty(ctx context.Context, tx pgx.Tx, interactionID, partyID string) (chat.Party, error) {
	if !validUUID(partyID) {
		return chat.Party{}, agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Not a party of this interaction.")
	}
	p, err := scanParty(tx.QueryRow(ctx, `SELECT `+partyColumns+` FROM parties p WHERE p.id = $1 AND p.interaction_id = $2`, partyID, interactionID))
	if err == pgx.ErrNoRows {
		return chat.Party{}, agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Not a party of this interaction.")
	}
	return p, err
}

// appendEvent writes the next transcript event. The caller holds the interaction's row lock.
func appendEvent(ctx context.Context, tx pgx.Tx, interactionID string, kind chat.EventKind, party *chat.Party, text, contentType string, reason chat.EndReason) (chat.Event, error) {
	ev := chat.Event{InteractionID: interactionID, Kind: kind, Party: party, Text: text, ContentType: contentType, Reason: reason}
	// pending_since: a customer message starts the wait unless one is already running; anyone
	// else's message answers it.
	pending := "pending_since"
	if kind == chat.EventMessage && party != nil {
		pending = "NULL"
		if party.Type == chat.PartyClient {
			pending = "coalesce(pending_since, clock_timestamp())"
		}
	}
	err := tx.QueryRow(ctx, `UPDATE interactions SET next_index = next_index + 1, pending_since = `+pending+`
		WHERE id = $1 RETURNING next_index - 1`, interactionID).Scan(&ev.Index)
	if err != nil {
		return chat.Event{}, err
	}
	var partyID *string
	if party != nil {
		partyID = &party.ID
	}
	err = tx.QueryRow(ctx, `INSERT INTO transcript_events (interaction_id, idx, kind, party_id, text, content_type, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp()) RETURNING created_at`,
		interactionID, ev.Index, kind, partyID, text, contentType, reason).Scan(&ev.At)
	return ev, err
}

const eventQuery = `SELECT e.interaction_id, e.idx, e.kind, e.text, e.content_type, e.reason, e.created_at,
		p.id, p.type, p.name, p.user_ref, p.joined_at, p.left_at
	FROM transcript_events e LEFT JOIN parties p ON p.id = e.party_id`

func scanEvents(rows pgx.Rows) ([]chat.Event, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Event, error) {
		var ev chat.Event
		var kind, reason string
		var pid, ptype, pname, pref *string
		var pjoined *time.Time
		var pleft *time.Time
		err := row.Scan(&ev.InteractionID, &ev.Index, &kind, &ev.Text, &ev.ContentType, &reason, &ev.At,
			&pid, &ptype, &pname, &pref, &pjoined, &pleft)
		ev.Kind, ev.Reason = chat.EventKind(kind), chat.EndReason(reason)
		if pid != nil {
			ev.Party = &chat.Party{ID: *pid, InteractionID: ev.InteractionID, Type: chat.PartyType(*ptype), Name: *pname, UserRef: *pref, JoinedAt: *pjoined, LeftAt: pleft}
		}
		return ev, err
	})
}

// Events returns up to limit transcript events from fromIndex, in order.
func (s *ChatStore) Events(ctx context.Context, interactionID string, fromIndex, limit int) ([]chat.Event, error) {
	if !validUUID(interactionID) {
		return nil, errSessionNotFound()
	}
	rows, err := s.db.Pool.Query(ctx, eventQuery+` WHERE e.interaction_id = $1 AND e.idx >= $2 ORDER BY e.idx LIMIT $3`,
		interactionID, fromIndex, limit)
	if err != nil {
		return nil, translate(err)
	}
	evs, err := scanEvents(rows)
	return evs, translate(err)
}

func eventAt(ctx context.Context, tx pgx.Tx, interactionID string, index int) (chat.Event, error) {
	rows, err := tx.Query(ctx, eventQuery+` WHERE e.interaction_id = $1 AND e.idx = $2`, interactionID, index)
	if err != nil {
		return chat.Event{}, err
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return chat.Event{}, err
	}
	if len(evs) != 1 {
		return chat.Event{}, pgx.ErrNoRows
	}
	return evs[0], nil
}

// messageResult is what a message command remembers for its retries.
type messageResult struct {
	Index int `json:"index"`
}

// AppendMessage appends a message from a party that is still in the interaction.
func (s *ChatStore) AppendMessage(ctx context.Context, req chat.MessageRequest) (chat.Event, error) {
	var ev chat.Event
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		var prev messageResult
		if found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev); err != nil || found {
			if err != nil {
				return err
			}
			ev, err = eventAt(ctx, tx, req.InteractionID, prev.Index)
			return err
		}
		if in.State.Over() {
			return errEnded()
		}
		party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
		if err != nil {
			return err
		}
		if party.LeftAt != nil {
			return agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "This party has left the interaction.")
		}
		ev, err = appendEvent(ctx, tx, req.InteractionID, chat.EventMessage, &party, req.Text, req.ContentType, "")
		if err != nil {
			return err
		}
		if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, messageResult{Index: ev.Index}); err != nil {
			return err
		}
		return s.notify(ctx, tx, wireNote{Kind: "e", Interaction: req.InteractionID, N: int64(ev.Index)})
	})
	return ev, err
}

// JoinParty adds a party; a queued or offered interaction becomes active.
func (s *ChatStore) JoinParty(ctx context.Context, req chat.JoinRequest) (chat.Party, []chat.Event, error) {
	var party chat.Party
	var events []chat.Event
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			return errEnded()
		}
		party, err = insertParty(ctx, tx, req.InteractionID, req.Type, req.Name, req.UserRef)
		if err != nil {
			return err
		}
		ev, err := appendEvent(ctx, tx, req.InteractionID, chat.EventPartyJoined, &party, "", "", "")
		if err != nil {
			return err
		}
		events = append(events, ev)
		if req.Type == chat.PartyAgent && (in.State == chat.StateQueued || in.State == chat.StateOffered) {
			if _, err := tx.Exec(ctx, `UPDATE interactions SET state = 'active' WHERE id = $1`, req.InteractionID); err != nil {
				return err
			}
		}
		if err := s.notify(ctx, tx, wireNote{Kind: "e", Interaction: req.InteractionID, N: int64(ev.Index)}); err != nil {
			return err
		}
		return s.notify(ctx, tx, wireNote{Kind: "q", Service: in.ServiceID})
	})
	return party, events, err
}

type leaveResult struct {
	At time.Time `json:"at"`
}

// LeaveParty marks a party as left and, when asked, ends the session. Leaving twice, or leaving
// an ended session, changes nothing and succeeds: the customer's "leave" must be safe to retry.
func (s *ChatStore) LeaveParty(ctx context.Context, req chat.LeaveRequest) (chat.LeaveResult, error) {
	var res chat.LeaveResult
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		in, err := lockInteraction(ctx, tx, req.InteractionID)
		if err != nil {
			return err
		}
		var prev leaveResult
		if found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev); err != nil || found {
			res.At = prev.At
			return err
		}
		party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&res.At); err != nil {
			return err
		}
		if in.State.Over() || party.LeftAt != nil {
			return saveCommand(ctx, tx, req.PartyID, req.CommandID, leaveResult{At: res.At})
		}
		if _, err := tx.Exec(ctx, `UPDATE parties SET left_at = clock_timestamp() WHERE id = $1`, party.ID); err != nil {
			return err
		}
		ev, err := appendEvent(ctx, tx, req.InteractionID, chat.EventPartyLeft, &party, "", "", "")
		if err != nil {
			return err
		}
		res.Events = append(res.Events, ev)
		if req.End {
			state := chat.StateEnded
			if in.State == chat.StateQueued || in.State == chat.StateOffered {
				state = chat.StateAbandoned
			}
			if _, err := tx.Exec(ctx, `UPDATE interactions SET state = $2, ended_at = clock_timestamp(), end_reason = $3 WHERE id = $1`,
				req.InteractionID, state, req.Reason); err != nil {
				return err
			}
			ev, err = appendEvent(ctx, tx, req.InteractionID, chat.EventSessionEnded, nil, "", "", req.Reason)
			if err != nil {
				return err
			}
			res.Events = append(res.Events, ev)
			// A chat that was being offered is withdrawn from the agent it was offered to.
			rows, err := tx.Query(ctx, `UPDATE assignments SET state = 'withdrawn', finished_at = now()
				WHERE interaction_id = $1 AND state = 'offered' RETURNING user_id`, req.InteractionID)
			if err != nil {
				return err
			}
			users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, u := range users {
				if err := s.notify(ctx, tx, agentNote(u)); err != nil {
					return err
				}
			}
		}
		if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, leaveResult{At: res.At}); err != nil {
			return err
		}
		if err := s.notify(ctx, tx, wireNote{Kind: "e", Interaction: req.InteractionID, N: int64(ev.Index)}); err != nil {
			return err
		}
		return s.notify(ctx, tx, wireNote{Kind: "q", Service: in.ServiceID})
	})
	return res, err
}
