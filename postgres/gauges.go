package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueueWaiting returns the number of queued chats per service (for metrics).
func (db *DB) QueueWaiting(ctx context.Context) (map[string]int, error) {
	return db.countBy(ctx, `SELECT s.name, count(i.id) FROM services s
		LEFT JOIN interactions i ON i.service_id = s.id AND i.state = 'queued' GROUP BY s.name`)
}

// AgentStates returns the number of enabled agents per presence state (for metrics).
func (db *DB) AgentStates(ctx context.Context) (map[string]int, error) {
	return db.countBy(ctx, `SELECT state, count(*) FROM users WHERE NOT disabled GROUP BY state`)
}

func (db *DB) countBy(ctx context.Context, sql string, args ...any) (map[string]int, error) {
	rows, err := db.Pool.Query(ctx, sql, args...)
	return collectCounts(rows, err)
}

// collectCounts reads (text, integer) rows into a map.
func collectCounts(rows pgx.Rows, err error) (map[string]int, error) {
	if err != nil {
		return nil, translate(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return nil, translate(err)
		}
		out[k] = n
	}
	return out, translate(rows.Err())
}
