package customer

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"agentd/chat"
	"agentd/web"
)

// blockingSource is a queue whose read blocks until released, like a QueuePositions query stuck
// behind a lock or a slow database.
type blockingSource struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSource) QueuePositions(ctx context.Context, serviceID int64) (map[string]int, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return map[string]int{"chat-1": 3}, nil
}

type fakeWaiter struct {
	sess *session
	got  chan int
}

func (w *fakeWaiter) setQueuePosition(pos int) {
	select {
	case w.got <- pos:
	default:
	}
}

func (w *fakeWaiter) session() *session { return w.sess }

// TestBroadcastNeverWaitsForQueuePositions: the node's fan-out calls Broadcast from the LISTEN
// loop and right after every commit, and Broadcast must not block. Before, a queue notification
// took a lock that a socket held for a whole QueuePositions query (up to 10 s), so one slow read
// stalled every notification of the node.
func TestBroadcastNeverWaitsForQueuePositions(t *testing.T) {
	src := &blockingSource{entered: make(chan struct{}, 1), release: make(chan struct{})}
	changes := NewQueueChanges()
	positions := NewQueuePositions(QueueDeps{Changes: changes, Source: src, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { positions.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	w := &fakeWaiter{sess: &session{interactionID: "chat-1", serviceID: 7}, got: make(chan int, 1)}
	positions.add(w, 7)
	select {
	case <-src.entered: // the worker is inside the blocked read now
	case <-time.After(5 * time.Second):
		t.Fatal("the worker never read the queue")
	}

	hub := web.NewHub()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			n := chat.Notification{Kind: chat.NotifyQueue, ServiceID: 7}
			changes.Broadcast(n)
			hub.Broadcast(n)
			changes.Resync()
			hub.Resync()
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Broadcast waited for a queue read in progress")
	}

	close(src.release)
	select {
	case pos := <-w.got:
		if pos != 3 {
			t.Fatalf("position %d, want 3", pos)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting customer never got its position")
	}
}
