package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/chat"
	"agentd/notify"
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
	return p, translate(err, agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Not a party of this interaction."))
}

// appendEvent writes the next transcript event. The caller holds the interaction's row lock.
func appendEvent(ctx context.Context, tx *Tx, interactionID string, kind chat.EventKind, party *chat.Party, text, contentType string, reason chat.EndReason) (chat.Event, error) {
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
	if err != nil || kind != chat.EventMessage {
		return ev, err
	}
	return ev, tx.emit(notify.MessageCreated, interactionID, messageData{Index: ev.Index, Party: partyOf(party),
		Text: text, ContentType: contentType, At: ev.At})
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
		return chat.Event{}, fmt.Errorf("transcript event %d of %s is missing", index, interactionID)
	}
	return evs[0], nil
}

// messageResult is what a message command remembers for its retries.
type messageResult struct {
	Index int `json:"index"`
}

// AppendMessage appends a message from a party that is still in the interaction, as one command
// of a group commit (batch.go).
func (s *ChatStore) AppendMessage(ctx context.Context, req chat.MessageRequest) (chat.Event, error) {
	var ev chat.Event
	err := s.c.InBatch(ctx, req.InteractionID, func(ctx context.Context, tx *Tx) error {
		var err error
		ev, err = s.AppendMessageTx(ctx, tx, req)
		return err
	})
	return ev, err
}

// AppendMessageTx is AppendMessage in the caller's transaction. It takes two statements: one
// locks the interaction and reads the command's first result and the party (lockForMessage), one
// appends the event and remembers the command (insertMessage); the group commit of the message
// path runs it for every message of a batch.
func (s *ChatStore) AppendMessageTx(ctx context.Context, tx *Tx, req chat.MessageRequest) (chat.Event, error) {
	if !validUUID(req.InteractionID) {
		return chat.Event{}, errSessionNotFound()
	}
	partyID := req.PartyID
	if !validUUID(partyID) {
		partyID = noParty // no party, no command: forbidden once the session is known to be open
	}
	state, prev, party, err := lockForMessage(ctx, tx, req.InteractionID, partyID, req.CommandID)
	if err != nil {
		return chat.Event{}, err
	}
	if prev != nil {
		return eventAt(ctx, tx, req.InteractionID, prev.Index)
	}
	if state.Over() {
		return chat.Event{}, errEnded()
	}
	if party == nil {
		return chat.Event{}, agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Not a party of this interaction.")
	}
	if party.LeftAt != nil {
		return chat.Event{}, agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "This party has left the interaction.")
	}
	ev, err := insertMessage(ctx, tx, req, party)
	if err != nil {
		return chat.Event{}, err
	}
	if err := tx.emit(notify.MessageCreated, req.InteractionID, messageData{Index: ev.Index, Party: partyOf(party),
		Text: req.Text, ContentType: req.ContentType, At: ev.At}); err != nil {
		return chat.Event{}, err
	}
	return ev, tx.notifyEvents(ctx, req.InteractionID, ev)
}

// noParty is a party id no party has.
const noParty = "00000000-0000-0000-0000-000000000000"

// lockForMessage takes the interaction's row lock and returns, in the same statement, its
// state, the first result of the party's command (nil when new, or without a command id) and the
// party (nil when it is not one of this interaction's).
func lockForMessage(ctx context.Context, tx *Tx, interactionID, partyID, commandID string) (chat.State, *messageResult, *chat.Party, error) {
	var state string
	var response []byte
	var pid, ptype, pname, pref *string
	var pjoined, pleft *time.Time
	err := tx.QueryRow(ctx, `SELECT i.state,
			(SELECT c.response FROM party_commands c WHERE $3 <> '' AND c.party_id = $2::uuid AND c.client_id = $3),
			p.id, p.type, p.name, p.user_ref, p.joined_at, p.left_at
		FROM interactions i LEFT JOIN parties p ON p.id = $2::uuid AND p.interaction_id = i.id
		WHERE i.id = $1 FOR UPDATE OF i`, interactionID, partyID, commandID).
		Scan(&state, &response, &pid, &ptype, &pname, &pref, &pjoined, &pleft)
	if err != nil {
		return "", nil, nil, translate(err, errSessionNotFound())
	}
	var prev *messageResult
	if response != nil {
		prev = &messageResult{}
		if err := json.Unmarshal(response, prev); err != nil {
			return "", nil, nil, err
		}
	}
	var party *chat.Party
	if pid != nil {
		party = &chat.Party{ID: *pid, InteractionID: interactionID, Type: chat.PartyType(*ptype), Name: *pname,
			UserRef: *pref, JoinedAt: *pjoined, LeftAt: pleft}
	}
	return chat.State(state), prev, party, nil
}

// insertMessage appends a message event at the interaction's next index and remembers the
// command's result, in one statement. The caller holds the interaction's row lock.
func insertMessage(ctx context.Context, tx *Tx, req chat.MessageRequest, party *chat.Party) (chat.Event, error) {
	// pending_since: a customer message starts the wait unless one is already running; anyone
	// else's message answers it (as appendEvent).
	// A customer's message also uses the session: a start sent again with the same id is refused
	// from its commit on (CloseStartRetry), at no cost, in the row update it makes anyway.
	pending := "NULL"
	if party.Type == chat.PartyClient {
		pending = "coalesce(pending_since, clock_timestamp()), start_retryable = false"
	}
	ev := chat.Event{InteractionID: req.InteractionID, Kind: chat.EventMessage, Party: party, Text: req.Text, ContentType: req.ContentType}
	err := tx.QueryRow(ctx, `WITH n AS (
			UPDATE interactions SET next_index = next_index + 1, pending_since = `+pending+`
			WHERE id = $1 RETURNING next_index - 1 AS idx),
		e AS (
			INSERT INTO transcript_events (interaction_id, idx, kind, party_id, text, content_type, reason, created_at)
			SELECT $1, n.idx, 'message', $2, $4, $5, '', clock_timestamp() FROM n
			RETURNING idx, created_at),
		c AS (
			INSERT INTO party_commands (party_id, client_id, response)
			SELECT $2, $3, jsonb_build_object('index', e.idx) FROM e WHERE $3 <> '')
		SELECT idx, created_at FROM e`,
		req.InteractionID, req.PartyID, req.CommandID, req.Text, req.ContentType).Scan(&ev.Index, &ev.At)
	return ev, err
}

// JoinParty adds a party; a queued or offered interaction becomes active.
func (s *ChatStore) JoinParty(ctx context.Context, req chat.JoinRequest) (chat.Party, []chat.Event, error) {
	var party chat.Party
	var events []chat.Event
	err := s.c.InTx(ctx, func(tx *Tx) error {
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
		if err := tx.notifyEvents(ctx, req.InteractionID, events...); err != nil {
			return err
		}
		return tx.notifyQueue(ctx, in.ServiceID)
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
	err := s.c.InTx(ctx, func(tx *Tx) error {
		var err error
		res, err = s.LeavePartyTx(ctx, tx, req)
		return err
	})
	return res, err
}

// LeavePartyTx is LeaveParty in the caller's transaction (an agent's End adds the survey link to
// the same commit).
func (s *ChatStore) LeavePartyTx(ctx context.Context, tx *Tx, req chat.LeaveRequest) (chat.LeaveResult, error) {
	var res chat.LeaveResult
	in, err := lockInteraction(ctx, tx, req.InteractionID)
	if err != nil {
		return res, err
	}
	var prev leaveResult
	if found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev); err != nil || found {
		res.At = prev.At
		return res, err
	}
	party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
	if err != nil {
		return res, err
	}
	res.At = req.At
	if in.State.Over() || party.LeftAt != nil {
		return res, saveCommand(ctx, tx, req.PartyID, req.CommandID, leaveResult{At: res.At})
	}
	if _, err := tx.Exec(ctx, `UPDATE parties SET left_at = $2 WHERE id = $1`, party.ID, req.At); err != nil {
		return res, err
	}
	ev, err := appendEvent(ctx, tx, req.InteractionID, chat.EventPartyLeft, &party, "", "", "")
	if err != nil {
		return res, err
	}
	res.Events = append(res.Events, ev)
	if req.End {
		state := chat.StateEnded
		if in.State == chat.StateQueued || in.State == chat.StateOffered {
			state = chat.StateAbandoned
		}
		if _, err := tx.Exec(ctx, `UPDATE interactions SET state = $2, ended_at = $3, end_reason = $4 WHERE id = $1`,
			req.InteractionID, state, req.At, req.Reason); err != nil {
			return res, err
		}
		ev, err = appendEvent(ctx, tx, req.InteractionID, chat.EventSessionEnded, nil, "", "", req.Reason)
		if err != nil {
			return res, err
		}
		res.Events = append(res.Events, ev)
		if err := tx.emit(notify.InteractionEnded, req.InteractionID, map[string]any{"state": state, "reason": req.Reason,
			"ended_at": req.At.UTC()}); err != nil {
			return res, err
		}
		// A chat that was being offered is withdrawn from the agent it was offered to.
		rows, err := tx.Query(ctx, `UPDATE assignments SET state = 'withdrawn', finished_at = now()
			WHERE interaction_id = $1 AND state = 'offered' RETURNING user_id`, req.InteractionID)
		if err != nil {
			return res, err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return res, err
		}
		for _, u := range users {
			if err := tx.notifyAgent(ctx, u); err != nil {
				return res, err
			}
		}
	}
	if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, leaveResult{At: res.At}); err != nil {
		return res, err
	}
	if err := tx.notifyEvents(ctx, req.InteractionID, res.Events...); err != nil {
		return res, err
	}
	return res, tx.notifyQueue(ctx, in.ServiceID)
}
