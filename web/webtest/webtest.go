// Package webtest builds a real agentd node for the tests of the websocket surfaces: a fresh
// migrated Postgres database (pgtest), the stores, the chat and agent services, the hub, the
// socket runner, the customers' queue positions and the node's notification fan-out, wired as
// cmd/agentd's Main.Run wires them. It has no HTTP server of its own (tests register their
// surface's routes and call Serve), no LISTEN connection (every notification is this node's own,
// delivered after its commit) and no background jobs. It also gives tests a synchronous websocket
// client and a chat service with injected read faults.
package webtest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/postgres"
	"agentd/postgres/pgtest"
	"agentd/web"
	"agentd/web/customer"
)

// Stack is one node's domain and realtime parts on a database of its own.
type Stack struct {
	DB       *postgres.DB
	Chat     *chat.Service
	Agents   *agent.Service
	Accounts *agent.Accounts
	History  *agent.History
	// Router is built but not running: tests route when they want, with RouteOnce (Accept).
	Router    *agent.Router
	Hub       *web.Hub
	Metrics   *web.Metrics
	Sockets   *web.Sockets
	Positions *customer.QueuePositions // its worker runs until cleanup
	Logger    *slog.Logger             // recorded (Logged); shown with go test -v
	// OtherNode is a chat service on the same database whose commits this node never hears of,
	// as another node's while the LISTEN connection is down. Resync then makes it catch up.
	OtherNode *chat.Service

	fan  web.Fanout
	logs *logLines
}

// New builds a stack on a fresh database. At cleanup it shuts the sockets down, stops the queue
// positions' worker and closes the pool, in that order (as Main.Close: nothing may use the pool
// after it closed).
func New(t testing.TB) *Stack {
	t.Helper()
	url := pgtest.NewDatabase(t)
	s := &Stack{logs: &logLines{t: t}}
	s.Logger = slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, s.Logger)
	if err != nil {
		t.Fatal(err)
	}
	s.DB = db

	s.Hub = web.NewHub()
	s.Metrics = web.NewMetrics(web.MetricsDeps{Hub: s.Hub, Gauges: db})
	wake := agent.NewWakeup()
	queues := customer.NewQueueChanges()
	s.fan = web.NewFanout(s.Metrics, wake, queues, s.Hub) // as cmd/agentd wires it

	chats := postgres.NewChatStore(postgres.NewCommitter(db, "webtest", s.fan))
	store := postgres.NewAgentStore(chats)
	s.Chat = chat.NewService(chat.Deps{Store: chats, Logger: s.Logger})
	s.Agents = agent.NewService(agent.Deps{Store: store, Chat: s.Chat, Logger: s.Logger})
	s.Accounts = agent.NewAccounts(agent.AccountsDeps{Store: store, Logger: s.Logger})
	s.History = agent.NewHistory(store)
	s.Router = agent.NewRouter(agent.RouterDeps{Store: store, Accept: s.Agents, Wakeup: wake, Logger: s.Logger})
	s.OtherNode = chat.NewService(chat.Deps{Store: postgres.NewChatStore(postgres.NewCommitter(db, "webtest-other", nil)), Logger: s.Logger})

	s.Sockets = web.NewSockets(web.SocketsDeps{Hub: s.Hub, Metrics: s.Metrics, Logger: s.Logger})
	s.Positions = customer.NewQueuePositions(customer.QueueDeps{Changes: queues, Source: s.Chat, Logger: s.Logger})
	runCtx, stop := context.WithCancel(ctx)
	worker := make(chan struct{})
	go func() { defer close(worker); s.Positions.Run(runCtx) }()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Sockets.Shutdown(ctx)
		stop()
		<-worker
		s.DB.Close()
	})
	return s
}

// Resync does what the LISTEN connection does when it comes back: everything on the node re-reads
// what it shows, since the notifications sent meanwhile are lost.
func (s *Stack) Resync() { s.fan.Resync() }

// ReadyAgent creates an agent of the default service, with room for five chats, and sets it ready.
func (s *Stack) ReadyAgent(t testing.TB, name string) agent.User {
	t.Helper()
	ctx := context.Background()
	u, err := s.Accounts.CreateUser(ctx, agent.NewUser{Username: name, Password: "password-" + name, Role: agent.RoleAgent,
		DisplayName: "Agent " + name, Capacity: 5, Services: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	if u, err = s.Agents.SetState(ctx, u, agent.StateReady, ""); err != nil {
		t.Fatal(err)
	}
	return u
}

// Accept runs one routing pass and has u accept interactionID, as from its console; it returns the
// agent's party in the chat.
func (s *Stack) Accept(t testing.TB, u agent.User, interactionID string) chat.Party {
	t.Helper()
	s.Router.RouteOnce(context.Background())
	p, err := s.Agents.Accept(context.Background(), u, interactionID)
	if err != nil {
		t.Fatalf("accept %s: %v", interactionID, err)
	}
	return p
}

// WaitUntil polls cond until it holds; not within 10 s fails the test.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logged returns how many log lines so far contain every one of parts (slog's text format:
// `msg="dropping slow connection"`, `surface=customer`).
func (s *Stack) Logged(parts ...string) int {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	n := 0
	for _, line := range s.logs.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

type logLines struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	if testing.Verbose() {
		l.t.Log(line)
	}
	return len(p), nil
}

// socketBuffer is the kernel buffer size asked for on both ends of every test socket: a client
// that stops reading fills them after a few frames instead of the megabytes loopback allows.
const socketBuffer = 8 << 10

// Serve serves h on a loopback server until the test ends and returns its base URL
// (ws://127.0.0.1:port).
func (s *Stack) Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(socketBuffer)
	}
	return c, err
}
