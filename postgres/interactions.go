package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentd"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// ChatStore implements chat.Store: interactions, parties, the transcript, UserData and notices.
// Every changing method is one unit of work (Committer.InTx); the ones other packages compose
// into their own operations have an exported XxxTx variant.
type ChatStore struct {
	c  *Committer
	db *DB
}

// NewChatStore returns the chat store of the node c commits for.
func NewChatStore(c *Committer) *ChatStore {
	return &ChatStore{c: c, db: c.db}
}

var _ chat.Store = (*ChatStore)(nil)

const interactionColumns = `i.id, i.service_id, s.name, i.state, i.customer_name, i.subject, i.next_index,
	i.next_seq, i.created_at, i.queued_at, i.ended_at, coalesce(i.end_reason, ''), i.pending_since`

func scanInteraction(row pgx.Row) (chat.Interaction, error) {
	var in chat.Interaction
	var state, reason string
	err := row.Scan(&in.ID, &in.ServiceID, &in.ServiceName, &state, &in.CustomerName, &in.Subject, &in.NextIndex,
		&in.NextSeq, &in.CreatedAt, &in.QueuedAt, &in.EndedAt, &reason, &in.PendingSince)
	in.State, in.EndReason = chat.State(state), chat.EndReason(reason)
	return in, err
}

func errSessionNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "session_not_found", "No chat session with this id and secure key.")
}

func errEnded() error {
	return agentd.Errorf(agentd.ECONFLICT, "session_ended", "The chat session has ended.")
}

// validUUID reports whether s has the textual shape of a UUID, so malformed ids from clients are
// answered as "not found" instead of reaching Postgres as a type error.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Interaction returns an interaction.
func (s *ChatStore) Interaction(ctx context.Context, id string) (chat.Interaction, error) {
	if !validUUID(id) {
		return chat.Interaction{}, errSessionNotFound()
	}
	in, err := scanInteraction(s.db.Pool.QueryRow(ctx, `SELECT `+interactionColumns+`
		FROM interactions i JOIN services s ON s.id = i.service_id WHERE i.id = $1`, id))
	return in, translate(err, errSessionNotFound())
}

// lockInteraction loads an interaction and locks its row until the transaction ends. Every
// changing statement on an interaction starts here: the lock serialises writers, which keeps
// transcript indexes and side-channel seqs contiguous and makes command de-duplication exact.
func lockInteraction(ctx context.Context, tx pgx.Tx, id string) (chat.Interaction, error) {
	if !validUUID(id) {
		return chat.Interaction{}, errSessionNotFound()
	}
	in, err := scanInteraction(tx.QueryRow(ctx, `SELECT `+interactionColumns+`
		FROM interactions i JOIN services s ON s.id = i.service_id WHERE i.id = $1 FOR UPDATE OF i`, id))
	return in, translate(err, errSessionNotFound())
}

// StartInteraction creates an interaction, its customer party, the first events and the
// customer's UserData in one transaction.
func (s *ChatStore) StartInteraction(ctx context.Context, req chat.StartRequest) (chat.StartResult, error) {
	var res chat.StartResult
	err := s.c.InTx(ctx, func(tx *Tx) error {
		// One statement finds the service and creates the interaction, unless the start token is
		// known already (ON CONFLICT waits for a concurrent start with the same token to commit,
		// then leaves its row alone).
		var wantID *string
		if req.ID != "" {
			if !validUUID(req.ID) {
				return agentd.Errorf(agentd.EINVALID, "invalid_argument", "The interaction id must be a UUID.")
			}
			wantID = &req.ID
		}
		var serviceID int64
		var strategyJSON []byte
		var created *string
		err := tx.QueryRow(ctx, `WITH svc AS (SELECT id, strategy FROM services WHERE name = $1 AND enabled),
			ins AS (INSERT INTO interactions
				(id, service_id, secure_key_hash, start_token_hash, customer_name, subject, origin, created_at, queued_at)
				SELECT coalesce($8::uuid, gen_random_uuid()), svc.id, $2, $3, $4, $5, $6, $7, $7 FROM svc
				ON CONFLICT (start_token_hash) DO NOTHING RETURNING id)
			SELECT svc.id, svc.strategy, (SELECT id::text FROM ins) FROM svc`,
			req.ServiceName, req.SecureKeyHash, req.StartTokenHash, req.CustomerName, req.Subject, req.Origin, req.At, wantID).
			Scan(&serviceID, &strategyJSON, &created)
		if err != nil && !noRows(err) {
			return err
		}
		if created == nil {
			// The token is known (a retry), or the service is not: a retry finds its session
			// whatever became of the service since.
			var existingID string
			var createdAt time.Time
			var retryable bool
			err := tx.QueryRow(ctx, `SELECT id, created_at, start_retryable FROM interactions WHERE start_token_hash = $1 FOR UPDATE`,
				req.StartTokenHash).Scan(&existingID, &createdAt, &retryable)
			switch {
			case err == nil:
				// Only the retry of a start whose answer was lost finds its session: within the
				// window, and before the session was ever used.
				if !retryable || req.At.Sub(createdAt) > req.RetryWindow {
					return agentd.Errorf(agentd.ECONFLICT, "invalid_argument", "This start command id was already used; use a new id.")
				}
				return s.retriedStart(ctx, tx, existingID, req.SecureKeyHash, &res)
			case !noRows(err):
				return err
			}
			return agentd.Errorf(agentd.ENOTFOUND, "service_not_found", "There is no chat service named %q.", req.ServiceName)
		}
		id := *created
		var strategy chat.Strategy
		if err := json.Unmarshal(strategyJSON, &strategy); err != nil {
			return fmt.Errorf("service %d strategy: %w", serviceID, err)
		}
		party, err := insertParty(ctx, tx, id, chat.PartyClient, req.CustomerName, "")
		if err != nil {
			return err
		}
		if err := tx.emit(notify.InteractionQueued, id, map[string]any{"customer_name": req.CustomerName,
			"subject": req.Subject, "origin": req.Origin, "requeued": false}); err != nil {
			return err
		}
		ev, err := appendEvent(ctx, tx, id, chat.EventPartyJoined, &party, "", "", "")
		if err != nil {
			return err
		}
		res.Events = append(res.Events, ev)
		if len(req.UserData) > 0 {
			writes, err := userdata.Plan(userdata.OwnerClient, nil, req.UserData, req.Limits)
			if err != nil {
				return err
			}
			if _, err := applyUserData(ctx, tx, id, writes, req.CustomerName); err != nil {
				return err
			}
		}
		if strategy.WelcomeNotice != "" {
			ev, err := appendEvent(ctx, tx, id, chat.EventNotice, nil, strategy.WelcomeNotice, chat.ContentNotice, "")
			if err != nil {
				return err
			}
			res.Events = append(res.Events, ev)
		}
		in, err := lockInteraction(ctx, tx, id)
		if err != nil {
			return err
		}
		res.Interaction, res.Party = in, party
		if err := tx.notifyEvents(ctx, id, res.Events...); err != nil {
			return err
		}
		return tx.notifyQueue(ctx, serviceID)
	})
	return res, err
}

func (s *ChatStore) retriedStart(ctx context.Context, tx *Tx, id string, keyHash []byte, res *chat.StartResult) error {
	in, err := lockInteraction(ctx, tx, id)
	if err != nil {
		return err
	}
	if in.State.Over() {
		return errEnded()
	}
	if _, err := tx.Exec(ctx, `UPDATE interactions SET secure_key_hash = $2 WHERE id = $1`, id, keyHash); err != nil {
		return err
	}
	party, err := clientParty(ctx, tx, id)
	if err != nil {
		return err
	}
	res.Interaction, res.Party, res.Retried = in, party, true
	return nil
}

// AuthenticateCustomer checks a session's secure key hash and returns the session.
func (s *ChatStore) AuthenticateCustomer(ctx context.Context, id string, keyHash []byte) (chat.Interaction, chat.Party, error) {
	in, err := s.Interaction(ctx, id)
	if err != nil {
		return chat.Interaction{}, chat.Party{}, err
	}
	var ok bool
	err = s.db.Pool.QueryRow(ctx, `SELECT secure_key_hash = $2 FROM interactions WHERE id = $1`, id, keyHash).Scan(&ok)
	if err != nil {
		return chat.Interaction{}, chat.Party{}, translate(err)
	}
	if !ok {
		return chat.Interaction{}, chat.Party{}, errSessionNotFound()
	}
	if err := s.CloseStartRetry(ctx, id); err != nil { // a restore uses the session
		return chat.Interaction{}, chat.Party{}, err
	}
	party, err := clientParty(ctx, s.db.Pool, id)
	if err != nil {
		return chat.Interaction{}, chat.Party{}, translate(err)
	}
	return in, party, nil
}

// CloseStartRetry records that the customer used its session: a start sent again with the same
// id is refused from now on. The customer's messages, UserData changes and notices record it in
// their own commit instead (closeStartRetry); this is for the other commands.
func (s *ChatStore) CloseStartRetry(ctx context.Context, id string) error {
	return translate(closeStartRetry(ctx, s.db.Pool, id))
}

// closeStartRetry is CloseStartRetry in the caller's transaction; it writes nothing once the
// retry is closed. (A customer's message sets start_retryable in the statement that appends it,
// insertMessage.)
func closeStartRetry(ctx context.Context, db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, id string) error {
	_, err := db.Exec(ctx, `UPDATE interactions SET start_retryable = false WHERE id = $1 AND start_retryable`, id)
	return err
}

// QueuePositions returns the 1-based position of every queued interaction of a service.
func (s *ChatStore) QueuePositions(ctx context.Context, serviceID int64) (map[string]int, error) {
	return collectCounts(s.db.Pool.Query(ctx, `SELECT id::text, row_number() OVER (ORDER BY queued_at, id) FROM interactions
		WHERE service_id = $1 AND state = 'queued'`, serviceID))
}

// commandDone looks up the stored result of a client command. found is false when the command
// is new (or has no id). Callers hold the interaction lock, so a concurrent duplicate waits and
// then finds the first one's result.
func commandDone(ctx context.Context, tx pgx.Tx, partyID, commandID string, out any) (found bool, err error) {
	if commandID == "" || partyID == "" {
		return false, nil
	}
	var raw []byte
	err = tx.QueryRow(ctx, `SELECT response FROM party_commands WHERE party_id = $1 AND client_id = $2`, partyID, commandID).Scan(&raw)
	if noRows(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(raw, out)
}

func saveCommand(ctx context.Context, tx pgx.Tx, partyID, commandID string, result any) error {
	if commandID == "" || partyID == "" {
		return nil
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO party_commands (party_id, client_id, response) VALUES ($1, $2, $3)`, partyID, commandID, raw)
	return err
}
