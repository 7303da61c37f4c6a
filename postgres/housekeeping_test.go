package postgres_test

import (
	"context"
	"testing"
	"time"

	"agentd/postgres"
	"agentd/postgres/pgtest"
)

type housekeepingBundle struct {
	ctx   context.Context
	db    *postgres.DB
	party string // a customer party, for party_commands rows
}

func setupHousekeeping(t *testing.T) *housekeepingBundle {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	var party string
	err = db.Pool.QueryRow(ctx, `WITH i AS (
			INSERT INTO interactions (service_id, secure_key_hash, start_token_hash)
			VALUES ((SELECT id FROM services WHERE name = 'default'), '\x00', gen_random_uuid()::text::bytea) RETURNING id)
		INSERT INTO parties (interaction_id, type) SELECT id, 'client' FROM i RETURNING id`).Scan(&party)
	if err != nil {
		t.Fatal(err)
	}
	return &housekeepingBundle{ctx: ctx, db: db, party: party}
}

// exec runs one statement of test set-up.
func (b *housekeepingBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.db.Pool.Exec(b.ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// column returns one text column of a table, sorted.
func (b *housekeepingBundle) column(t *testing.T, sql string) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(b.ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPruneCommands(t *testing.T) {
	t.Parallel()

	t.Run("OK_OnlyOlderThanTheWindow", func(t *testing.T) {
		t.Parallel()
		b := setupHousekeeping(t)
		for id, age := range map[string]string{"old": "25 hours", "edge": "23 hours 59 minutes", "fresh": "1 minute"} {
			b.exec(t, `INSERT INTO party_commands (party_id, client_id, response, created_at)
				VALUES ($1, $2, '{}', now() - $3::interval)`, b.party, id, age)
		}
		n, err := b.db.PruneCommands(b.ctx, 24*time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("PruneCommands = %d, %v; want 1", n, err)
		}
		if left := b.column(t, `SELECT client_id FROM party_commands ORDER BY client_id`); len(left) != 2 || left[0] != "edge" || left[1] != "fresh" {
			t.Fatalf("left %v, want [edge fresh]", left)
		}
		if n, err := b.db.PruneCommands(b.ctx, 24*time.Hour); err != nil || n != 0 {
			t.Fatalf("second PruneCommands = %d, %v; want 0", n, err)
		}
	})

	t.Run("OK_BacklogInBatches", func(t *testing.T) {
		t.Parallel()
		b := setupHousekeeping(t)
		// More than one batch of 10,000: the loop must go on after a full batch.
		b.exec(t, `INSERT INTO party_commands (party_id, client_id, response, created_at)
			SELECT $1, 'old-' || g, '{}', now() - interval '2 days' FROM generate_series(1, 10005) g`, b.party)
		b.exec(t, `INSERT INTO party_commands (party_id, client_id, response) VALUES ($1, 'fresh', '{}')`, b.party)
		n, err := b.db.PruneCommands(b.ctx, 24*time.Hour)
		if err != nil || n != 10005 {
			t.Fatalf("PruneCommands = %d, %v; want 10005", n, err)
		}
		if left := b.column(t, `SELECT client_id FROM party_commands`); len(left) != 1 || left[0] != "fresh" {
			t.Fatalf("left %v, want [fresh]", left)
		}
	})
}

func TestPruneWebSessions(t *testing.T) {
	t.Parallel()
	b := setupHousekeeping(t)
	var user int64
	if err := b.db.Pool.QueryRow(b.ctx, `INSERT INTO users (username, display_name, password_hash, role)
		VALUES ('ada', 'Ada', 'x', 'agent') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	for token, expires := range map[string]string{"expired": "-1 minute", "long-expired": "-30 days", "live": "1 hour"} {
		b.exec(t, `INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
			VALUES ($1::text::bytea, $2, $1, now() - interval '40 days', now() + $3::interval)`, token, user, expires)
	}
	n, err := b.db.PruneWebSessions(b.ctx)
	if err != nil || n != 2 {
		t.Fatalf("PruneWebSessions = %d, %v; want 2", n, err)
	}
	if left := b.column(t, `SELECT csrf_token FROM web_sessions`); len(left) != 1 || left[0] != "live" {
		t.Fatalf("left %v, want [live]", left)
	}
}
