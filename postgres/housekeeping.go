package postgres

import (
	"context"
	"time"
)

// pruneBatch bounds each housekeeping DELETE, so a large backlog is removed in many short
// statements, each its own transaction, rather than one that holds its row locks and bloats WAL
// for minutes.
const pruneBatch = 10_000

// PruneCommands deletes the stored results of client commands older than olderThan, after which a
// retried command id is no longer recognised. It returns how many rows it deleted, also when the
// context ends between batches.
func (db *DB) PruneCommands(ctx context.Context, olderThan time.Duration) (int64, error) {
	return db.pruneBatches(ctx, `DELETE FROM party_commands WHERE (party_id, client_id) IN (
		SELECT party_id, client_id FROM party_commands WHERE created_at < now() - $1::interval LIMIT $2)`, olderThan)
}

// PruneWebSessions deletes browser sessions whose expiry has passed: WebSession no longer accepts
// them, and DeleteWebSession only clears them when someone signs out.
func (db *DB) PruneWebSessions(ctx context.Context) (int64, error) {
	return db.pruneBatches(ctx, `DELETE FROM web_sessions WHERE token_hash IN (
		SELECT token_hash FROM web_sessions WHERE expires_at < now() LIMIT $1)`)
}

// PruneEvents deletes integration events older than olderThan (their webhook deliveries and
// attempts go with them) and test deliveries as old, and records the newest position pruned, so a
// stream asked to resume from before it answers position_expired (EventStore.Pruned).
func (db *DB) PruneEvents(ctx context.Context, olderThan time.Duration) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.Pool.QueryRow(ctx, `WITH d AS (
				DELETE FROM integration_events WHERE (tx_id, id) IN (
					SELECT tx_id, id FROM integration_events WHERE created_at < now() - $1::interval
					ORDER BY tx_id, id LIMIT $2)
				RETURNING tx_id, id),
			last AS (SELECT tx_id, id FROM d ORDER BY tx_id DESC, id DESC LIMIT 1),
			up AS (
				INSERT INTO integration_events_pruned (tx_id, id) SELECT tx_id, id FROM last
				ON CONFLICT (one) DO UPDATE SET tx_id = excluded.tx_id, id = excluded.id
					WHERE (integration_events_pruned.tx_id, integration_events_pruned.id) < (excluded.tx_id, excluded.id)
				RETURNING 1)
			SELECT count(*) FROM d`, olderThan, pruneBatch).Scan(&n)
		if err != nil {
			return total, translate(err)
		}
		total += n
		if n < pruneBatch {
			break
		}
	}
	m, err := db.pruneBatches(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE event_id IS NULL AND created_at < now() - $1::interval LIMIT $2)`, olderThan)
	return total + m, err
}

// pruneBatches runs a DELETE whose last parameter is the batch size until it deletes fewer rows
// than that, and returns the total.
func (db *DB) pruneBatches(ctx context.Context, sql string, args ...any) (int64, error) {
	args = append(args, pruneBatch)
	var total int64
	for {
		tag, err := db.Pool.Exec(ctx, sql, args...)
		if err != nil {
			return total, translate(err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}
