package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/jobs"
	"agentd/postgres"
	"agentd/web"
)

// Main is one agentd node: configuration, pool, hub, LISTEN connection, background jobs and HTTP
// server. Tests start it on 127.0.0.1:0 exactly as `agentd serve` does.
type Main struct {
	Config Config
	Logger *slog.Logger

	DB       *postgres.DB
	Chat     *chat.Service
	Agents   *agent.Service
	Server   *web.Server
	Listener *postgres.Listener
	Jobs     *jobs.Runner

	ln     net.Listener
	http   *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
}

// ParseFlags reads flags and environment into m.Config and validates them.
func (m *Main) ParseFlags(name string, args []string) error {
	fs := flag.NewFlagSet("agentd "+name, flag.ContinueOnError)
	m.Config.bindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := m.Config.load(); err != nil {
		return err
	}
	m.Logger = m.Config.newLogger(os.Stderr)
	return nil
}

// Run connects, migrates and starts serving; it returns once the node is listening.
func (m *Main) Run(ctx context.Context) error {
	if m.Config.NodeID == "" {
		m.Config.NodeID = fmt.Sprintf("node-%d", time.Now().UnixNano())
	}
	applied, err := postgres.Migrate(ctx, m.Config.DatabaseURL)
	if err != nil {
		return err
	}
	if applied > 0 {
		m.Logger.Info("applied migrations", "count", applied)
	}
	if m.DB, err = postgres.Open(ctx, m.Config.DatabaseURL, m.Logger); err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", m.Config.Addr); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", m.Config.Addr, err)
	}
	if m.Config.Agent.PublicURL == "" {
		m.Config.Agent.PublicURL = m.URL()
	}
	hub := web.NewHub()
	chatStore := postgres.NewChatStore(m.DB, m.Config.NodeID)
	m.Chat = chat.NewService(chatStore, hub, m.Config.Chat, m.Logger)
	agentStore := postgres.NewAgentStore(m.DB, chatStore)
	agentStore.SetLocal(hub)
	m.Agents = agent.NewService(agentStore, m.Chat, m.Config.Agent, m.Logger)
	metrics := web.NewMetrics(hub, agentStore, m.Config.MetricsToken)
	hub.Observe(func(n chat.Notification) {
		metrics.Broadcast(n)
		if n.Kind == chat.NotifyQueue || n.Kind == chat.NotifyAgent {
			m.Agents.Wake()
		}
	})
	m.Listener = postgres.NewListener(m.Config.DatabaseURL, m.Config.NodeID, hub, hub.Resync, m.Logger)
	m.Server = web.NewServer(m.Config.Web, m.Agents, agent.NewAdmin(agentStore, m.Agents), hub, metrics, m.ready, m.Logger)

	if err := m.startJobs(ctx); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.wg.Go(func() { m.Listener.Run(runCtx) })
	m.wg.Go(func() { m.Agents.Run(runCtx) })

	m.http = &http.Server{
		Handler:           m.Server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.wg.Go(func() {
		if err := m.http.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server stopped", "err", err)
		}
	})
	return nil
}

func (m *Main) ready(ctx context.Context) error {
	if err := m.DB.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	ok, err := m.DB.MigrationsCurrent(ctx)
	if err != nil {
		return errors.New("cannot read schema version")
	}
	if !ok {
		return errors.New("migrations pending")
	}
	if !m.Listener.Connected() {
		return errors.New("LISTEN connection down")
	}
	return nil
}

// URL returns the node's base URL.
func (m *Main) URL() string {
	if m.ln == nil {
		return ""
	}
	return "http://" + m.ln.Addr().String()
}

// Close shuts down gracefully: stop accepting, close sockets with "going away" so clients
// reconnect elsewhere, stop background work, close the pool last.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Websocket handlers are hijacked, so http.Server.Shutdown stops accepting and finishes plain
	// requests without waiting for them; the web server then closes the sockets with 1001.
	if m.http != nil {
		if err := m.http.Shutdown(ctx); err != nil {
			m.Logger.Warn("http shutdown", "err", err)
		}
	}
	if m.Server != nil {
		m.Server.Shutdown(ctx)
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.stopJobs(ctx) // River works on the pool: before it closes
	if m.DB != nil {
		m.DB.Close()
	}
	return nil
}

func runMigrate(ctx context.Context, args []string) error {
	m := NewMain()
	if err := m.ParseFlags("migrate", args); err != nil {
		return err
	}
	applied, err := postgres.Migrate(ctx, m.Config.DatabaseURL)
	if err != nil {
		return err
	}
	m.Logger.Info("migrations applied", "count", applied)
	return nil
}
