package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"agentd/migrations"
	"agentd/postgres/pgtest"
)

// TestMigrate003Backfill upgrades a database with open chats from version 2: pending_since must
// come out as the oldest customer message after the last answer, for open chats only.
func TestMigrate003Backfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, conn, m := migratedTo(t, 2)
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	// chat (state, then messages by party type): answered; waiting since its 2nd client message
	// after the agent's answer; waiting with no answer at all; ended (never pending).
	chats := map[string]struct {
		state string
		msgs  []string
	}{
		"a0000000-0000-0000-0000-000000000001": {"active", []string{"client", "agent"}},
		"a0000000-0000-0000-0000-000000000002": {"active", []string{"client", "agent", "client", "client"}},
		"a0000000-0000-0000-0000-000000000003": {"queued", []string{"client", "client"}},
		"a0000000-0000-0000-0000-000000000004": {"ended", []string{"client"}},
	}
	for id, c := range chats {
		if _, err := conn.Exec(ctx, `INSERT INTO interactions (id, service_id, state, secure_key_hash, start_token_hash)
			VALUES ($1::uuid, (SELECT id FROM services WHERE name = 'default'), $2, '\x00', decode(md5($3), 'hex'))`, id, c.state, id); err != nil {
			t.Fatal(err)
		}
		parties := map[string]string{}
		var pid string
		for i, typ := range c.msgs {
			if parties[typ] == "" {
				if err := conn.QueryRow(ctx, `INSERT INTO parties (interaction_id, type) VALUES ($1, $2) RETURNING id`, id, typ).Scan(&pid); err != nil {
					t.Fatal(err)
				}
				parties[typ] = pid
			}
			if _, err := conn.Exec(ctx, `INSERT INTO transcript_events (interaction_id, idx, kind, party_id, text, created_at)
				VALUES ($1, $2, 'message', $3, 'x', $4)`, id, i, parties[typ], base.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]*time.Time{
		"a0000000-0000-0000-0000-000000000001": nil,
		"a0000000-0000-0000-0000-000000000002": ptr(base.Add(2 * time.Minute)),
		"a0000000-0000-0000-0000-000000000003": ptr(base),
		"a0000000-0000-0000-0000-000000000004": nil,
	}
	for id, w := range want {
		var got *time.Time
		if err := conn.QueryRow(ctx, `SELECT pending_since FROM interactions WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if (got == nil) != (w == nil) || got != nil && !got.Equal(*w) {
			t.Errorf("%s: pending_since %v, want %v", id, got, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// migratedTo returns a new database migrated to version, a connection to it (closed when the
// test ends) and its migrator, to go on from there.
func migratedTo(t *testing.T, version int32) (string, *pgx.Conn, *migrate.Migrator) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	m, err := migrate.NewMigrator(ctx, conn, "schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateTo(ctx, version); err != nil {
		t.Fatal(err)
	}
	return url, conn, m
}
