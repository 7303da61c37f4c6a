package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"agentd/notify"
	"agentd/postgres"
	"agentd/postgres/pgtest"
)

// TestEventsHorizon: a reader never gets an event ahead of one an older transaction may still
// commit, so resuming from the last position skips nothing.
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
	db := open()
	insert := `INSERT INTO integration_events (type, data) VALUES ($1, '{}')`

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
	var evs []notify.Event
	for deadline := time.Now().Add(time.Minute); len(evs) == 0 && time.Now().Before(deadline); {
		evs = read(notify.Position{}) // other tests' write transactions hold it back while they run (a big insert: seconds on a loaded machine)
	}
	if len(evs) != 1 || evs[0].Type != "first" {
		t.Fatalf("got %v, want the committed event", evs)
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
	evs = nil
	for deadline := time.Now().Add(time.Minute); len(evs) < 2 && time.Now().Before(deadline); {
		evs = read(last)
	}
	if len(evs) != 2 || evs[0].Type != "slow" || evs[1].Type != "fast" {
		t.Fatalf("after the commit got %v, want slow then fast", evs)
	}
	if evs := read(evs[1].Position); len(evs) != 0 {
		t.Fatalf("resuming from the last position got %v again", evs)
	}
}

// TestEventsConcurrentCommitters: writers commit events concurrently, each transaction held open
// for a random moment, while a reader follows from its last position: it gets every event once.
func TestEventsConcurrentCommitters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	const writers, each = 8, 40
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				tx, err := db.Pool.Begin(ctx)
				if err == nil {
					_, err = tx.Exec(ctx, `INSERT INTO integration_events (type, data) VALUES ('t', jsonb_build_object('k', $1::text))`,
						fmt.Sprintf("%d-%d", w, i))
				}
				if err == nil {
					_, err = tx.Exec(ctx, `SELECT pg_sleep(random() * 0.004)`)
				}
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	store := postgres.NewEventStore(db)
	seen := map[string]bool{}
	var pos notify.Position
	done := 0
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < writers*each {
		if time.Now().After(deadline) {
			all, _ := store.Events(ctx, notify.Position{}, notify.Filter{}, 1000)
			t.Fatalf("the reader got %d of %d events (at %s); from the start: %d", len(seen), writers*each, pos, len(all))
		}
		for done < writers {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatal(err)
				}
				done++
				continue
			default:
			}
			break
		}
		evs, err := store.Events(ctx, pos, notify.Filter{}, 7) // small pages: many resumes
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			var d struct{ K string }
			_ = json.Unmarshal(e.Data, &d)
			if seen[d.K] {
				t.Fatalf("event %s read twice", d.K)
			}
			seen[d.K] = true
			pos = e.Position
		}
	}
}
