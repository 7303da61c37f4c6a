package main

import (
	"context"
	"testing"
	"time"
)

// TestHousekeeping: a node prunes, by itself, command results older than the command retention
// and browser sessions past their expiry, and leaves the fresh ones.
func TestHousekeeping(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) {
		c.Jobs.PruneInterval = 200 * time.Millisecond
		c.Jobs.CommandRetention = time.Hour
	})
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := m.DB.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := m.DB.Pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	c, _ := startSession(t, m, nil)
	mustOK(t, c.doID("cmd-old", "send_message", map[string]any{"text": "an hour and more ago"}))
	mustOK(t, c.doID("cmd-fresh", "send_message", map[string]any{"text": "just now"}))
	exec(`UPDATE party_commands SET created_at = now() - interval '61 minutes' WHERE client_id = 'cmd-old'`)

	u := newAgent(t, m, "ada", 1)
	for token, expires := range map[string]string{"expired": "-1 second", "live": "12 hours"} {
		exec(`INSERT INTO web_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
			VALUES (sha256($1::text::bytea), $2, $1, now() - interval '1 day', now() + $3::interval)`, token, u.ID, expires)
	}

	waitFor(t, "the old command result and the expired session pruned", func() bool {
		return count(`SELECT count(*) FROM party_commands WHERE client_id = 'cmd-old'`) == 0 &&
			count(`SELECT count(*) FROM web_sessions WHERE csrf_token = 'expired'`) == 0
	})
	if n := count(`SELECT count(*) FROM party_commands WHERE client_id = 'cmd-fresh'`); n != 1 {
		t.Fatalf("fresh command results left: %d, want 1", n)
	}
	if n := count(`SELECT count(*) FROM web_sessions WHERE csrf_token = 'live'`); n != 1 {
		t.Fatalf("live sessions left: %d, want 1", n)
	}
}
