package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"agentd/chat"
	"agentd/postgres"
	"agentd/postgres/pgtest"
)

// resyncs records when the listener (re)connected.
type resyncs struct {
	mu sync.Mutex
	at []time.Time
	c  chan struct{}
}

func (r *resyncs) Broadcast(chat.Notification) {}

func (r *resyncs) Resync() {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	select {
	case r.c <- struct{}{}:
	default:
	}
}

// TestListenBackoffResets (security probe finding 5): the LISTEN connection's reconnect backoff
// starts over once a connection stayed up for the healthy period. Before, it only ever grew: after
// a few drops, even drops hours apart, every reconnect waited 5 s and other nodes' events reached
// this node's sockets 5 s late.
func TestListenBackoffResets(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := &resyncs{c: make(chan struct{}, 1)}
	l := postgres.NewListener(postgres.ListenerDeps{DatabaseURL: url, NodeID: "n-backoff", Local: r,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HealthyAfter: 2 * time.Second})
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(lctx) })
	defer func() { cancel(); wg.Wait() }()

	connected := func(what string) {
		t.Helper()
		select {
		case <-r.c:
		case <-time.After(15 * time.Second):
			t.Fatalf("the listener did not reconnect %s", what)
		}
	}
	kill := func() time.Time {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'agentd-listen:n-backoff'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminated %d LISTEN backends (%v)", n, err)
		}
		return time.Now()
	}
	connected("at first")
	// Dropped right after each reconnect, the backoff grows: 100, 200, 400, 800 ms.
	for i := range 4 {
		kill()
		connected("after a quick drop " + string(rune('1'+i)))
	}
	// Up for longer than the healthy period, a drop is a first one again.
	time.Sleep(2500 * time.Millisecond) // the condition here is time itself: the healthy period must pass
	killed := kill()
	connected("after a drop following a healthy period")
	r.mu.Lock()
	took := r.at[len(r.at)-1].Sub(killed)
	r.mu.Unlock()
	if took > time.Second {
		t.Fatalf("reconnecting after a healthy period took %v; the backoff did not start over", took)
	}
}
