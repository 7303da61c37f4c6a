package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"agentd/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startNode runs a Main on 127.0.0.1:0 against dbURL, exactly as `agentd serve` wires it.
func startNode(t testing.TB, dbURL string, configure ...func(*Config)) *Main {
	t.Helper()
	return startNodeAt(t, dbURL, nil, configure...)
}

// startNodeAt is startNode with the domain's clock set to now.
func startNodeAt(t testing.TB, dbURL string, now func() time.Time, configure ...func(*Config)) *Main {
	t.Helper()
	return startNodeWith(t, dbURL, func(m *Main) { m.Now = now }, configure...)
}

// startNodeWith is startNode with setup applied to the Main after the test's own logger (set it to
// capture the log).
func startNodeWith(t testing.TB, dbURL string, setup func(*Main), configure ...func(*Config)) *Main {
	t.Helper()
	m := NewMain()
	m.Config = Config{Addr: "127.0.0.1:0", DatabaseURL: dbURL, LogFormat: "text"}
	for _, f := range configure {
		f(&m.Config)
	}
	if err := m.Config.load(); err != nil {
		t.Fatal(err)
	}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		m.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	setup(m)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	waitFor(t, "LISTEN connection", func() bool { return m.Listener.Connected() })
	return m
}

// testClock is a domain clock a test moves ahead instead of sleeping: real time plus an offset.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock d ahead.
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// frame is a decoded server frame.
type frame map[string]any

func (f frame) str(path ...string) string {
	var v any = map[string]any(f)
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (f frame) num(path ...string) int {
	var v any = map[string]any(f)
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	n, _ := v.(float64)
	return int(n)
}

// client is a protocol client over a real websocket.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	mu     sync.Mutex
	frames []frame // every non-result frame, in arrival order
	result map[string]frame
	closed chan struct{}
	close  *websocket.CloseError
	notify chan struct{}
}

func dial(t testing.TB, m *Main, header http.Header) *client {
	t.Helper()
	c, resp, err := dialRaw(m, header)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	return newClient(t, c)
}

func dialRaw(m *Main, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 5 * time.Second}
	return d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/chat", header)
}

func newClient(t testing.TB, ws *websocket.Conn) *client {
	c := &client{t: t, ws: ws, result: map[string]frame{}, closed: make(chan struct{}), notify: make(chan struct{}, 1)}
	go func() {
		defer close(c.closed)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
					c.close = ce
				}
				c.mu.Unlock()
				return
			}
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Errorf("server sent non-JSON frame %q", b)
				return
			}
			c.mu.Lock()
			if f["type"] == "result" {
				c.result[f.str("id")] = f
			} else {
				c.frames = append(c.frames, f)
			}
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = ws.Close(); <-c.closed })
	return c
}

// newID returns a command id with 128 random bits, enough for a start id.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// do sends a command with a fresh id and returns its result frame.
func (c *client) do(cmd string, args any) frame {
	c.t.Helper()
	return c.doID(newID(), cmd, args)
}

func (c *client) doID(id, cmd string, args any) frame {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "cmd": cmd, "args": args})
	c.sendRaw(b)
	return c.waitResult(id)
}

func (c *client) waitResult(id string) frame {
	c.t.Helper()
	var f frame
	c.wait("result "+id, func() bool {
		f = c.result[id]
		return f != nil
	})
	return f
}

// wait blocks until cond (called with c.mu held) is true.
func (c *client) wait(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.notify:
		case <-c.closed:
			c.mu.Lock()
			ok := cond()
			c.mu.Unlock()
			if !ok {
				c.t.Fatalf("connection closed (%v) while waiting for %s", c.close, what)
			}
			return
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s; frames: %v", what, c.snapshot())
		}
	}
}

func (c *client) snapshot() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...)
}

// waitFrame waits for a non-result frame matching pred and returns it.
func (c *client) waitFrame(what string, pred func(frame) bool) frame {
	c.t.Helper()
	var found frame
	c.wait(what, func() bool {
		for _, f := range c.frames {
			if pred(f) {
				found = f
				return true
			}
		}
		return false
	})
	return found
}

// events returns the transcript events received so far.
func (c *client) events() []frame {
	var out []frame
	for _, f := range c.snapshot() {
		if f["type"] == "event" {
			ev, _ := f["event"].(map[string]any)
			out = append(out, frame(ev))
		}
	}
	return out
}

func (c *client) waitEvent(what string, pred func(ev frame) bool) frame {
	c.t.Helper()
	var found frame
	c.waitFrame(what, func(f frame) bool {
		if f["type"] != "event" {
			return false
		}
		ev := frame(f["event"].(map[string]any))
		if pred(ev) {
			found = ev
			return true
		}
		return false
	})
	return found
}

func mustOK(t testing.TB, f frame) frame {
	t.Helper()
	if f["ok"] != true {
		t.Fatalf("command failed: %v", f)
	}
	d, _ := f["data"].(map[string]any)
	return frame(d)
}

func mustErr(t *testing.T, f frame, code string) {
	t.Helper()
	if f["ok"] == true || f.str("error", "code") != code {
		t.Fatalf("want error %s, got %v", code, f)
	}
	if f.str("error", "description") == "" {
		t.Fatalf("error %s has no description", code)
	}
}

// startSession starts a session and returns the client and the start data.
func startSession(t testing.TB, m *Main, args map[string]any) (*client, frame) {
	t.Helper()
	c := dial(t, m, nil)
	if args == nil {
		args = map[string]any{"username": "Carol"}
	}
	data := mustOK(t, c.do("start", args))
	return c, data
}

func newDB(t testing.TB) string { return pgtest.NewDatabase(t) }
