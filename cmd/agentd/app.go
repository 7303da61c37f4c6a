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
	"strings"
	"sync"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/jobs"
	"agentd/notify"
	"agentd/postgres"
	"agentd/web"
	"agentd/web/admin"
	"agentd/web/api"
	"agentd/web/console"
	"agentd/web/customer"
	"agentd/web/devtools"
	"agentd/web/supervisor"
	"agentd/web/survey"
)

// Main is one agentd node: configuration, pool, domain services, LISTEN connection, background
// jobs, sockets and HTTP server, all wired here and nowhere else. Tests start it on 127.0.0.1:0
// exactly as `agentd serve` does.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Now is the clock of every domain service (time.Now when nil): offers' deadlines, presence,
	// queue order, sessions. Tests set one they can move instead of sleeping.
	Now func() time.Time

	DB       *postgres.DB
	Chat     *chat.Service
	Agents   *agent.Service
	Accounts *agent.Accounts
	Router   *agent.Router
	Surveys  *agent.Surveys
	History  *agent.History
	Admin    *agent.Admin
	Sockets  *web.Sockets
	Server   *web.Server
	Listener *postgres.Listener
	Jobs     *jobs.Runner
	Tokens   *postgres.TokenStore
	Webhooks *notify.Webhooks

	// Supervision is the supervisors' live work on chats: monitoring, whisper, barge-in.
	Supervision *agent.Supervision

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
	if m.Now == nil {
		m.Now = time.Now
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
	maxConns, err := m.connCap()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", m.Config.Addr, err)
	}
	conns := web.NewLimitListener(web.LimitListenerDeps{Listener: ln, MaxConnsPerAddr: m.Config.HTTP.MaxConnsPerAddr, MaxConns: maxConns, Logger: m.Logger})
	m.ln = conns
	if m.Config.Agent.PublicURL == "" {
		m.Config.Agent.PublicURL = m.URL()
	}
	if m.Config.Dev && m.Config.Agent.CoBrowseURL == "" {
		m.Config.Agent.CoBrowseURL = devtools.CoBrowseURL(strings.TrimRight(m.Config.Agent.PublicURL, "/"))
	}
	m.coBrowseKey()
	cfg, logger := m.Config, m.Logger

	// Realtime: the hub and the mailboxes come first, since the stores announce to them.
	hub := web.NewHub()
	metrics := web.NewMetrics(web.MetricsDeps{Hub: hub, Gauges: m.DB, Conns: conns, Token: cfg.MetricsToken, Pprof: cfg.Pprof})
	wake := agent.NewWakeup()
	queues := customer.NewQueueChanges()
	streams := api.NewStreams()
	// The node's notification fan-out, wired here and nowhere else: metrics count them, queue
	// and agent changes wake the router, queue changes recompute waiting customers' positions,
	// the hub delivers to the node's sockets and the integrators' event streams read what was
	// committed. Every receiver only records and wakes.
	fan := web.NewFanout(metrics, wake, queues, hub, streams)

	// Storage and the domain.
	chats := postgres.NewChatStore(postgres.NewCommitter(m.DB, cfg.NodeID, fan))
	store := postgres.NewAgentStore(chats)
	m.Chat = chat.NewService(chat.Deps{Store: chats, Config: cfg.Chat, Logger: logger, Now: m.Now})
	m.Agents = agent.NewService(agent.Deps{Store: store, Chat: m.Chat, Config: cfg.Agent, Logger: logger, Now: m.Now})
	m.Accounts = agent.NewAccounts(agent.AccountsDeps{Store: store, Config: cfg.Accounts, Logger: logger, Now: m.Now})
	m.Router = agent.NewRouter(agent.RouterDeps{Store: store, Accept: m.Agents, Wakeup: wake, Config: cfg.Router, Logger: logger, Now: m.Now})
	m.Surveys = agent.NewSurveys(agent.SurveysDeps{Store: store, Limits: m.Chat.Config().UserDataLimits})
	m.History = agent.NewHistory(store)
	m.Admin = agent.NewAdmin(store)
	m.Supervision = agent.NewSupervision(agent.SuperviseDeps{Store: postgres.NewMonitorStore(postgres.NewCommitter(m.DB, cfg.NodeID, fan)),
		MaxMessageChars: m.Chat.Config().MaxMessageChars})
	m.Tokens = postgres.NewTokenStore(m.DB, m.Now)
	m.Webhooks = notify.NewWebhooks(notify.WebhooksDeps{Store: postgres.NewWebhookStore(m.DB), Config: cfg.Webhooks, Now: m.Now})
	m.Listener = postgres.NewListener(postgres.ListenerDeps{DatabaseURL: cfg.DatabaseURL, NodeID: cfg.NodeID, Local: fan, Logger: logger})

	// HTTP: the core and its surfaces.
	m.Sockets = web.NewSockets(web.SocketsDeps{Hub: hub, Metrics: metrics, Logger: logger})
	positions := customer.NewQueuePositions(customer.QueueDeps{Changes: queues, Source: m.Chat, Logger: logger})
	auth := web.NewAuth(web.AuthDeps{Sessions: m.Accounts, Cookies: web.Cookies{PublicURL: cfg.Agent.PublicURL}, Logger: logger, Metrics: metrics,
		SessionMaxAge: m.Accounts.Config().SessionMaxAge})
	surfaces := []web.Surface{
		customer.New(customer.Deps{Config: cfg.Customer, PublicURL: cfg.Agent.PublicURL, Chat: m.Chat, Sockets: m.Sockets, Positions: positions, Metrics: metrics, Logger: logger}),
		console.New(console.Deps{Desk: m.Agents, Accounts: m.Accounts, History: m.History, Chat: m.Chat, Auth: auth,
			Sockets: m.Sockets, Metrics: metrics, Logger: logger, Monitors: m.Supervision}),
		admin.New(admin.Deps{Admin: m.Admin, Auth: auth, Webhooks: m.Webhooks, Tokens: m.Tokens}),
		supervisor.New(supervisor.Deps{Chat: m.Chat, History: m.History, Interactions: postgres.NewAPIStore(m.DB),
			Audit: postgres.NewSupervisorStore(m.DB), Search: postgres.NewSearchStore(m.DB), Auth: auth,
			Dashboard: postgres.NewDashboardStore(m.DB), Sessions: m.Accounts, Sockets: m.Sockets, Now: m.Now,
			DashCfg: cfg.Dashboard,
			Monitor: supervisor.MonitorDeps{Supervision: m.Supervision, Chat: m.Chat, Accounts: m.Accounts, Sockets: m.Sockets, Metrics: metrics, Logger: logger}}),
		survey.New(survey.Deps{Surveys: m.Surveys, Cookies: auth.Cookies()}),
		api.New(api.Deps{Tokens: m.Tokens, Store: postgres.NewAPIStore(m.DB), Chat: m.Chat, History: m.History, Config: cfg.API, Logger: logger,
			Events: postgres.NewEventStore(m.DB), Sockets: m.Sockets, Streams: streams, Webhooks: m.Webhooks}),
	}
	if cfg.Dev {
		surfaces = append(surfaces, devtools.New(cfg.Agent.CoBrowseContextKey))
	}
	m.Server = web.NewServer(web.ServerDeps{Logger: logger, Metrics: metrics, Auth: auth, Ready: m.ready, FrameSrc: cfg.Agent.CoBrowseURL,
		Surfaces: surfaces})

	if err := m.startJobs(ctx); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.wg.Go(func() { m.Listener.Run(runCtx) })
	m.wg.Go(func() { m.Router.Run(runCtx) })
	m.wg.Go(func() { positions.Run(runCtx) })

	// The timeouts end what a client holds without using it: a request read slowly, an answer
	// not taken, a keep-alive connection left idle. A websocket is hijacked from the server, and
	// gorilla clears the server's deadlines on its connection when it upgrades: the pumps' own
	// deadlines (web/conn.go) govern it from then on (TestWebsocketOutlivesHTTPTimeouts).
	m.http = &http.Server{
		Handler:           m.Server.Handler(),
		ReadHeaderTimeout: min(10*time.Second, cfg.HTTP.ReadTimeout),
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.wg.Go(func() {
		if err := m.http.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server stopped", "err", err)
		}
	})
	return nil
}

// connCap returns the node's connection cap: AGENTD_MAX_CONNS, else what the descriptor limit
// leaves once the database pool (open by now), the LISTEN connection and files are provided for.
func (m *Main) connCap() (int, error) {
	nofile := descriptorLimit()
	budget, err := connBudget(nofile, int(m.DB.Pool.Config().MaxConns))
	n := m.Config.HTTP.MaxConns
	switch {
	case n > 0 && (err != nil || n > budget):
		m.Logger.Warn("AGENTD_MAX_CONNS is above what the descriptor limit leaves for connections",
			"max_conns", n, "descriptor_limit", nofile, "budget", budget)
	case n == 0 && err != nil:
		return 0, err
	case n == 0:
		n = budget
	}
	m.Logger.Info("connection caps", "max_conns", n, "max_conns_per_addr", m.Config.HTTP.MaxConnsPerAddr, "descriptor_limit", nofile)
	return n, nil
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
	// requests without waiting for them; Sockets then closes the sockets with 1001 and waits for
	// both pumps of each, so no pump still reads from the pool once it is closed below.
	if m.http != nil {
		if err := m.http.Shutdown(ctx); err != nil {
			m.Logger.Warn("http shutdown", "err", err)
		}
	}
	if m.Sockets != nil {
		m.Sockets.Shutdown(ctx)
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
