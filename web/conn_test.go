package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"

	"agentd/chat"
)

// testConn is a connection of the core whose handler records every Flush it is asked for.
type testConn struct {
	*Conn
	flushes chan Dirty // what each Flush was given, in order
	calls   atomic.Int32
	// Set before the pumps run: the Flushes (counted from 1) that fail as a refresh whose
	// database read failed, and the rest of Flush and HandleFrame.
	failing []int32
	onFlush func(ctx context.Context, call int32)
	onFrame func(ctx context.Context)
}

var errRefresh = errors.New("injected: database unreachable")

func (c *testConn) Notify(chat.Notification) {}

func (c *testConn) HandleFrame(ctx context.Context, _ int, _ []byte) {
	if c.onFrame != nil {
		c.onFrame(ctx)
	}
}

func (c *testConn) Flush(ctx context.Context, d Dirty) error {
	call := c.calls.Add(1)
	select {
	case c.flushes <- d:
	case <-c.Done():
		return nil
	}
	if c.onFlush != nil {
		c.onFlush(ctx, call)
	}
	if slices.Contains(c.failing, call) {
		return errRefresh
	}
	return nil
}

// nextFlush returns what the next Flush was given.
func (c *testConn) nextFlush(t *testing.T, within time.Duration) Dirty {
	t.Helper()
	select {
	case d := <-c.flushes:
		return d
	case <-time.After(within):
		t.Fatalf("no flush within %v", within)
		return Dirty{}
	}
}

// testBundle is one Sockets on an httptest server whose only route runs testConns.
type testBundle struct {
	sockets *Sockets
	metrics *Metrics
	url     string         // the socket's ws:// URL
	conns   chan *testConn // each connection once it is open
}

// noGauges stands in for Postgres in the metrics registry: these tests have no database.
type noGauges struct{}

func (noGauges) QueueWaiting(context.Context) (map[string]int, error) { return nil, nil }
func (noGauges) AgentStates(context.Context) (map[string]int, error)  { return nil, nil }

// setup serves connections with opts; configure, when set, adjusts each new connection before
// its pumps start.
func setup(t *testing.T, opts ConnOptions, configure func(*testConn)) *testBundle {
	t.Helper()
	hub := NewHub()
	b := &testBundle{metrics: NewMetrics(MetricsDeps{Hub: hub, Gauges: noGauges{}}), conns: make(chan *testConn, 8)}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.sockets = NewSockets(SocketsDeps{Hub: hub, Metrics: b.metrics, Logger: logger})
	e := echo.New()
	e.GET("/ws", func(c echo.Context) error {
		return b.sockets.Serve(c, opts, func(wc *Conn) (Handler, Subscriber, *CloseReason) {
			tc := &testConn{Conn: wc, flushes: make(chan Dirty, 16)}
			if configure != nil {
				configure(tc)
			}
			b.conns <- tc
			return tc, tc, nil
		})
	})
	srv := httptest.NewServer(e)
	b.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.sockets.Shutdown(ctx)
		srv.Close()
	})
	return b
}

// open dials a socket: the client's end and the server's connection.
func (b *testBundle) open(t *testing.T) (*websocket.Conn, *testConn) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial(b.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	select {
	case tc := <-b.conns:
		return ws, tc
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not open the connection")
		return nil, nil
	}
}

// dropped reads the slow-connection counter of m.
func dropped(t *testing.T, m *Metrics) float64 {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "agentd_slow_connections_dropped_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no agentd_slow_connections_dropped_total metric")
	return 0
}

// closeOf reads from ws until it ends and returns the close frame the server sent (nil when the
// stream ended without one).
func closeOf(t *testing.T, ws *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok && ce.Code != websocket.CloseAbnormalClosure {
			return ce
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatal("the socket is still open")
		}
		return nil
	}
}

// describe lists what d holds, sorted, so that two Dirty values compare as strings.
func describe(d Dirty) string {
	var parts []string
	if d.Resync {
		parts = append(parts, "resync")
	}
	for m := range d.marks {
		parts = append(parts, fmt.Sprintf("mark %s:%s", m.Kind, m.Key))
	}
	for key, evs := range d.events {
		var idx []int
		for _, ev := range evs {
			idx = append(idx, ev.Index)
		}
		parts = append(parts, fmt.Sprintf("events %s:%v", key, idx))
	}
	for key, ty := range d.typing {
		parts = append(parts, fmt.Sprintf("typing %s:%v:%s", key, ty.IsTyping, ty.Text))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func TestConnFailedFlush(t *testing.T) {
	t.Parallel()
	// open returns a connection whose second Flush fails. Its first Flush waits until the
	// returned release is called, so that everything marked meanwhile lands in the second.
	open := func(t *testing.T) (c *testConn, release func()) {
		gate := make(chan struct{})
		b := setup(t, ConnOptions{Surface: "test", ReadLimit: 1 << 16}, func(c *testConn) {
			c.failing = []int32{2}
			c.onFlush = func(_ context.Context, call int32) {
				if call == 1 {
					<-gate
				}
			}
		})
		_, c = b.open(t)
		c.Mark(Mark{chat.NotifyAgent, ""})
		if got := describe(c.nextFlush(t, 5*time.Second)); got != "mark agent:" {
			t.Fatalf("first flush got %q", got)
		}
		return c, func() { close(gate) }
	}

	t.Run("OK_RetriedWithEverythingAfterRetryAfter", func(t *testing.T) {
		t.Parallel()
		c, release := open(t)
		c.Mark(Mark{chat.NotifySide, "a"}, Mark{chat.NotifyQueue, ""})
		c.HandOver("b", []chat.Event{{Index: 3}, {Index: 4}})
		c.SetTyping("c", chat.Typing{IsTyping: true, Text: "hel"})
		release()

		failed := c.nextFlush(t, 5*time.Second)
		failedAt := time.Now()
		if got, want := describe(failed), "events b:[3 4], mark queue:, mark side:a, typing c:true:hel"; got != want {
			t.Fatalf("failing flush got %q, want %q", got, want)
		}
		// Nothing new arrives: the retry alone brings everything back, the events handed over
		// as a mark to read them from Postgres.
		retry := c.nextFlush(t, 5*time.Second)
		if waited := time.Since(failedAt); waited < retryAfter*9/10 {
			t.Fatalf("retried after %v, before retryAfter (%v)", waited, retryAfter)
		}
		if got, want := describe(retry), "mark events:b, mark queue:, mark side:a, typing c:true:hel"; got != want {
			t.Fatalf("retry got %q, want %q", got, want)
		}
	})

	t.Run("OK_MergedWithWhatArrivedMeanwhile", func(t *testing.T) {
		t.Parallel()
		c, release := open(t)
		c.Resync()
		c.Mark(Mark{chat.NotifyEvents, "a"})
		c.SetTyping("t", chat.Typing{IsTyping: true, Text: "old"})
		release()

		failed := c.nextFlush(t, 5*time.Second)
		if got, want := describe(failed), "mark events:a, resync, typing t:true:old"; got != want {
			t.Fatalf("failing flush got %q, want %q", got, want)
		}
		// New marks wake the write pump at once: the flush they cause carries the failed one's
		// marks too, and the newer typing replaces the older.
		c.Mark(Mark{chat.NotifySide, "n"})
		c.HandOver("e", []chat.Event{{Index: 7}})
		c.SetTyping("t", chat.Typing{IsTyping: false, Text: "new"})
		merged := c.nextFlush(t, retryAfter/2)
		if got, want := describe(merged), "events e:[7], mark events:a, mark side:n, resync, typing t:false:new"; got != want {
			t.Fatalf("merged flush got %q, want %q", got, want)
		}
	})
}

func TestConnSlowConsumer(t *testing.T) {
	t.Parallel()
	const wait = 200 * time.Millisecond

	t.Run("ErrTooSlow_SendQueueFull", func(t *testing.T) {
		t.Parallel()
		// The write pump is stuck in a refresh while the read pump keeps sending results: the
		// queue fills and the next Send waits WriteWait, then drops the connection. The socket
		// itself can still take the close frame, so the client reads 1013 "too slow".
		var sends atomic.Int32
		inFlush, returned := make(chan struct{}), make(chan struct{})
		b := setup(t, ConnOptions{Surface: "test", ReadLimit: 1 << 16, WriteWait: wait}, func(c *testConn) {
			c.onFlush = func(ctx context.Context, _ int32) {
				close(inFlush)
				select {
				case <-c.Done():
				case <-ctx.Done():
				}
			}
			c.onFrame = func(context.Context) {
				defer close(returned)
				c.Mark(Mark{Kind: chat.NotifyQueue})
				<-inFlush
				for {
					select {
					case <-c.Done():
						return
					default:
					}
					sends.Add(1)
					c.Send(Result("r", strings.Repeat("x", 100)))
				}
			}
		})
		ws, _ := b.open(t)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("Send blocked for longer than WriteWait")
		}
		if n := sends.Load(); n != sendQueue+1 {
			t.Fatalf("%d sends before the drop, want %d (a full queue, then the one that waited)", n, sendQueue+1)
		}
		ce := closeOf(t, ws)
		if ce == nil || ce.Code != CloseTooSlow.Code || ce.Text != CloseTooSlow.Text {
			t.Fatalf("client saw close %v, want %d %q", ce, CloseTooSlow.Code, CloseTooSlow.Text)
		}
		if n := dropped(t, b.metrics); n != 1 {
			t.Fatalf("slow connections dropped: %v, want 1", n)
		}
	})

	t.Run("ErrTooSlow_ClientNotReading", func(t *testing.T) {
		t.Parallel()
		// The read pump keeps sending results to a client that reads nothing: the kernel's
		// buffers fill, a write of the write pump waits WriteWait and fails. That is the same
		// slow consumer, dropped and counted as one. (The close frame cannot follow a write that
		// timed out halfway, so this client only sees its stream end.)
		returned := make(chan struct{})
		b := setup(t, ConnOptions{Surface: "test", ReadLimit: 1 << 16, WriteWait: wait}, func(c *testConn) {
			c.onFrame = func(context.Context) {
				defer close(returned)
				result := Result("r", strings.Repeat("x", 16<<10))
				for {
					select {
					case <-c.Done():
						return
					default:
					}
					c.Send(result)
				}
			}
		})
		ws, _ := b.open(t)
		_, healthy := b.open(t)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatal("the connection of a client that reads nothing was not closed")
		}
		if n := dropped(t, b.metrics); n != 1 {
			t.Fatalf("slow connections dropped: %v, want 1", n)
		}
		if ce := closeOf(t, ws); ce != nil && ce.Code != CloseTooSlow.Code {
			t.Fatalf("client saw close %v", ce)
		}
		healthy.Mark(Mark{Kind: chat.NotifyQueue})
		healthy.nextFlush(t, 5*time.Second)
	})
}

func TestSocketsShutdown(t *testing.T) {
	// Not parallel: goleak must see only this test's goroutines.
	var opened atomic.Int32
	var refreshDone atomic.Bool
	inFlush := make(chan struct{})
	b := setup(t, ConnOptions{Surface: "test", ReadLimit: 1 << 16}, func(c *testConn) {
		if opened.Add(1) == 1 {
			// The first connection is in a refresh when the node shuts down, one that takes a
			// while to give up (a database read stuck until its own timeout).
			c.onFlush = func(context.Context, int32) {
				close(inFlush)
				time.Sleep(time.Second)
				refreshDone.Store(true)
			}
		}
	})
	ignore := goleak.IgnoreCurrent() // the server, not the sockets
	var clients []*websocket.Conn
	for i := range 3 {
		ws, c := b.open(t)
		clients = append(clients, ws)
		if i == 0 {
			c.Mark(Mark{Kind: chat.NotifyQueue})
			<-inFlush
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.sockets.Shutdown(ctx)
	if !refreshDone.Load() {
		t.Fatal("Shutdown returned while a write pump was still refreshing")
	}
	goleak.VerifyNone(t, ignore)
	if n := b.sockets.Hub().Count(); n != 0 {
		t.Fatalf("%d connections still registered", n)
	}
	for i, ws := range clients {
		if ce := closeOf(t, ws); ce == nil || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("client %d saw close %v, want 1001", i, ce)
		}
	}
}
