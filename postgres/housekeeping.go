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
