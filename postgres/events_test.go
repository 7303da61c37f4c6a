package postgres_test

import (
	"context"
	"testing"

	"agentd/notify"
	"agentd/postgres"
	"agentd/postgres/pgtest"
)

// TestEventsHorizon: a reader never gets an event ahead of one an older transaction of its
// database may still commit (so resuming from the last position skips nothing), and a
// transaction left open in another database of the cluster does not hold the reader back.
func TestEventsHorizon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, pgtest.NewDatabase(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	db, other := open(), open()
	insert := `INSERT INTO integration_events (type, data) VALUES ($1, '{}')`

	// Another database's open write transaction, left open for the whole test.
	foreign, err := other.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = foreign.Rollback(ctx) }()
	if _, err := foreign.Exec(ctx, insert, "foreign"); err != nil {
		t.Fatal(err)
	}

	store := postgres.NewEventStore(db)
	read := func(after notify.Position) []notify.Event {
		t.Helper()
		evs, err := store.Events(ctx, after, notify.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if _, err := db.Pool.Exec(ctx, insert, "first"); err != nil {
		t.Fatal(err)
	}
	evs := read(notify.Position{})
	if len(evs) != 1 || evs[0].Type != "first" {
		t.Fatalf("got %v, want the committed event although another database has a transaction open", evs)
	}
	last := evs[0].Position

	slow, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback(ctx) }()
	if _, err := slow.Exec(ctx, insert, "slow"); err != nil { // older transaction, commits last
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, insert, "fast"); err != nil {
		t.Fatal(err)
	}
	if evs := read(last); len(evs) != 0 {
		t.Fatalf("got %v while an older transaction of this database is open; its event would be skipped", evs)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	evs = read(last)
	if len(evs) != 2 || evs[0].Type != "slow" || evs[1].Type != "fast" {
		t.Fatalf("after the commit got %v, want slow then fast", evs)
	}
	if evs := read(evs[1].Position); len(evs) != 0 {
		t.Fatalf("resuming from the last position got %v again", evs)
	}
}
