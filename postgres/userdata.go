package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd/chat"
	"agentd/userdata"
)

func nextSeq(ctx context.Context, tx pgx.Tx, interactionID string) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `UPDATE interactions SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq - 1`, interactionID).Scan(&seq)
	return seq, err
}

// applyUserData writes planned changes and their history rows; it returns the last seq used.
// The caller holds the interaction's row lock.
func applyUserData(ctx context.Context, tx *Tx, interactionID string, writes []userdata.Write, actorName string) (int64, error) {
	var last int64
	for _, w := range writes {
		seq, err := nextSeq(ctx, tx, interactionID)
		if err != nil {
			return 0, err
		}
		var old json.RawMessage
		if w.Old != nil {
			old = w.Old.Value
		}
		switch w.Op {
		case userdata.OpDelete:
			if _, err := tx.Exec(ctx, `DELETE FROM userdata WHERE interaction_id = $1 AND key = $2`, interactionID, w.Key); err != nil {
				return 0, err
			}
		default:
			if _, err := tx.Exec(ctx, `INSERT INTO userdata (interaction_id, key, value, owner, visible, updated_at)
				VALUES ($1, $2, $3, $4, $5, clock_timestamp())
				ON CONFLICT (interaction_id, key) DO UPDATE
				SET value = excluded.value, owner = excluded.owner, visible = excluded.visible, updated_at = excluded.updated_at`,
				interactionID, w.Key, []byte(w.Value), w.Owner, w.Visible); err != nil {
				return 0, err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO userdata_history
			(interaction_id, seq, key, op, old_value, new_value, owner, actor_name, visible, was_visible, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock_timestamp())`,
			interactionID, seq, w.Key, w.Op, nullJSON(old), nullJSON(w.Value), w.Owner, actorName, w.Visible, w.WasVisible); err != nil {
			return 0, err
		}
		if err := emitUserData(ctx, tx, interactionID, w, old, actorName); err != nil {
			return 0, err
		}
		last = seq
	}
	return last, nil
}

func nullJSON(v json.RawMessage) any {
	if v == nil {
		return nil
	}
	return []byte(v)
}

func loadUserData(ctx context.Context, q querier, interactionID string) ([]userdata.Entry, error) {
	rows, err := q.Query(ctx, `SELECT key, value, owner, visible, updated_at FROM userdata
		WHERE interaction_id = $1 ORDER BY key`, interactionID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (userdata.Entry, error) {
		var e userdata.Entry
		var value []byte
		var owner string
		err := row.Scan(&e.Key, &value, &owner, &e.Visible, &e.UpdatedAt)
		e.Value, e.Owner = json.RawMessage(value), userdata.Owner(owner)
		return e, err
	})
}

// planAndApply plans changes by owner against the interaction's current UserData and applies
// them; it returns the last seq written (0 when nothing changed). The caller holds the row lock.
func planAndApply(ctx context.Context, tx *Tx, interactionID string, owner userdata.Owner, actorName string, changes []userdata.Change, lim userdata.Limits) (int64, error) {
	entries, err := loadUserData(ctx, tx, interactionID)
	if err != nil {
		return 0, err
	}
	existing := make(map[string]userdata.Entry, len(entries))
	for _, e := range entries {
		existing[e.Key] = e
	}
	writes, err := userdata.Plan(owner, existing, changes, lim)
	if err != nil {
		return 0, err
	}
	return applyUserData(ctx, tx, interactionID, writes, actorName)
}

type changeResult struct {
	Seq int64     `json:"seq"`
	At  time.Time `json:"at"`
}

// ChangeUserData applies a UserData change request whole or not at all. The customer cannot change
// UserData after the session ended; agentd's own writers can (the survey's answers, the
// wrap-up's Disposition). An agent's edits are refused then by AgentStore.ChangeUserData.
func (s *ChatStore) ChangeUserData(ctx context.Context, req chat.UserDataRequest) (chat.ChangeResult, error) {
	var res chat.ChangeResult
	err := s.c.InBatch(ctx, req.InteractionID, func(ctx context.Context, tx *Tx) error {
		var err error
		res, err = s.ChangeUserDataTx(ctx, tx, req)
		return err
	})
	return res, err
}

// ChangeUserDataTx is ChangeUserData in the caller's transaction (an agent's edit adds its audit
// row to the same commit). A retried command answers the first result with Replayed set.
func (s *ChatStore) ChangeUserDataTx(ctx context.Context, tx *Tx, req chat.UserDataRequest) (chat.ChangeResult, error) {
	var res chat.ChangeResult
	in, err := lockInteraction(ctx, tx, req.InteractionID)
	if err != nil {
		return res, err
	}
	var prev changeResult
	if found, err := commandDone(ctx, tx, req.PartyID, req.CommandID, &prev); err != nil || found {
		return chat.ChangeResult{Seq: prev.Seq, At: prev.At, Replayed: found}, err
	}
	if req.Actor == userdata.OwnerClient && in.State.Over() {
		return res, errEnded()
	}
	if req.PartyID != "" {
		party, err := lockedParty(ctx, tx, req.InteractionID, req.PartyID)
		if err != nil {
			return res, err
		}
		if party.Type == chat.PartyClient { // the customer uses its session, in this commit
			if err := closeStartRetry(ctx, tx, req.InteractionID); err != nil {
				return res, err
			}
		}
	}
	if res.Seq, err = planAndApply(ctx, tx, req.InteractionID, req.Actor, req.ActorName, req.Changes, req.Limits); err != nil {
		return res, err
	}
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&res.At); err != nil {
		return res, err
	}
	if err := saveCommand(ctx, tx, req.PartyID, req.CommandID, changeResult{Seq: res.Seq, At: res.At}); err != nil {
		return res, err
	}
	return res, tx.notifySide(ctx, req.InteractionID, res.Seq)
}

// UserData returns every key of an interaction.
func (s *ChatStore) UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error) {
	if !validUUID(interactionID) {
		return nil, errSessionNotFound()
	}
	entries, err := loadUserData(ctx, s.db.Pool, interactionID)
	return entries, translate(err)
}

const historyColumns = `seq, key, op, old_value, new_value, owner, actor_name, visible, was_visible, created_at`

func scanHistory(row pgx.CollectableRow) (userdata.HistoryEntry, error) {
	var h userdata.HistoryEntry
	var op, owner string
	var oldV, newV []byte
	err := row.Scan(&h.Seq, &h.Key, &op, &oldV, &newV, &owner, &h.ActorName, &h.Visible, &h.WasVisible, &h.At)
	h.Op, h.Owner = userdata.Op(op), userdata.Owner(owner)
	if oldV != nil {
		h.OldValue = oldV
	}
	if newV != nil {
		h.NewValue = newV
	}
	return h, err
}

// UserDataHistory returns every change of an interaction's UserData, oldest first.
func (s *ChatStore) UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error) {
	if !validUUID(interactionID) {
		return nil, errSessionNotFound()
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+historyColumns+` FROM userdata_history WHERE interaction_id = $1 ORDER BY seq`, interactionID)
	if err != nil {
		return nil, translate(err)
	}
	hs, err := pgx.CollectRows(rows, scanHistory)
	return hs, translate(err)
}
