// Package web is agentd's HTTP side: the Echo server, routes and middleware, the customer
// websocket protocol (docs/protocol.md) and the hub that fans events out to sockets.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/static"
	"agentd/web/templates"
)

// Config is the web layer's configuration (docs/configuration.md).
type Config struct {
	// AllowedOrigins lists the origins (scheme://host[:port]) whose pages may open customer
	// sockets. Empty means same-origin only; a single "*" allows any origin.
	AllowedOrigins []string
	// MaxFrameBytes is the largest command frame accepted.
	MaxFrameBytes int
	// CommandsPerSecond and CommandBurst limit commands per connection.
	CommandsPerSecond float64
	CommandBurst      int
	// StartsPerMinute and StartBurst limit new sessions per client address.
	StartsPerMinute int
	StartBurst      int
	// ConnectsPerMinute and ConnectBurst limit websocket upgrades per client address.
	ConnectsPerMinute int
	ConnectBurst      int
}

// DefaultConfig holds the defaults used for zero fields.
var DefaultConfig = Config{
	MaxFrameBytes:     64 << 10,
	CommandsPerSecond: 20,
	CommandBurst:      40,
	StartsPerMinute:   20,
	StartBurst:        20,
	ConnectsPerMinute: 120,
	ConnectBurst:      60,
}

// ParseOrigins validates a comma-separated origin list such as AGENTD_ALLOWED_ORIGINS.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, errors.New("invalid origin " + strconvQuote(o) + ": expected scheme://host[:port], e.g. https://www.example.com")
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	return out, nil
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// Server is the HTTP server of one agentd node.
type Server struct {
	cfg          Config
	chat         *chat.Service
	agents       *agent.Service
	admin        *agent.Admin
	metrics      *Metrics
	queues       *queuePositions
	hub          *Hub
	logger       *slog.Logger
	ready        func(context.Context) error
	echo         *echo.Echo
	upgrader     websocket.Upgrader
	startLimiter *ipLimiter
	connLimiter  *ipLimiter
	loginLimiter *ipLimiter
	ctx          context.Context // cancelled at shutdown; parent of every connection's work
	cancel       context.CancelFunc
	sockets      sync.WaitGroup // running socket handlers (hijacked, so http.Server does not wait for them)
}

// NewServer builds the server and its routes. ready reports whether the node can serve (database
// reachable, migrations current, LISTEN connected).
func NewServer(cfg Config, agents *agent.Service, admin *agent.Admin, hub *Hub, metrics *Metrics, ready func(context.Context) error, logger *slog.Logger) *Server {
	svc := agents.Chat()
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = DefaultConfig.MaxFrameBytes
	}
	if cfg.CommandsPerSecond == 0 {
		cfg.CommandsPerSecond, cfg.CommandBurst = DefaultConfig.CommandsPerSecond, DefaultConfig.CommandBurst
	}
	if cfg.StartsPerMinute == 0 {
		cfg.StartsPerMinute, cfg.StartBurst = DefaultConfig.StartsPerMinute, DefaultConfig.StartBurst
	}
	if cfg.ConnectsPerMinute == 0 {
		cfg.ConnectsPerMinute, cfg.ConnectBurst = DefaultConfig.ConnectsPerMinute, DefaultConfig.ConnectBurst
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, chat: svc, agents: agents, admin: admin, hub: hub, metrics: metrics, queues: newQueuePositions(svc), logger: logger, ready: ready,
		loginLimiter: newIPLimiter(10, 5),
		startLimiter: newIPLimiter(cfg.StartsPerMinute, cfg.StartBurst),
		connLimiter:  newIPLimiter(cfg.ConnectsPerMinute, cfg.ConnectBurst),
		ctx:          ctx, cancel: cancel,
	}
	hub.queues = s.queues
	s.upgrader = websocket.Upgrader{
		Subprotocols:    []string{Subprotocol},
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// The origin is checked after the upgrade, so a refused page gets a readable reason
		// (an error frame and close code 1008) instead of an opaque failed handshake.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	s.echo = s.routes()
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Hub returns the node's hub.
func (s *Server) Hub() *Hub { return s.hub }

// Shutdown closes every websocket with 1001 (going away) so clients reconnect elsewhere, stops
// connection work and waits (up to ctx) for the socket handlers to finish. Call it after the HTTP
// server stopped accepting, so no socket is opened behind its back.
func (s *Server) Shutdown(ctx context.Context) {
	s.hub.CloseAll(websocket.CloseGoingAway, "server shutting down")
	s.cancel()
	done := make(chan struct{})
	go func() { s.sockets.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.logger.Warn("socket handlers still running at shutdown")
	}
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.Recover())
	if s.metrics != nil {
		e.Use(s.metrics.middleware)
		e.GET("/metrics", s.metrics.handler())
	}
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: s.contentSecurityPolicy(),
	}))
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/ws/chat", s.handleChatSocket)
	e.GET("/demo", s.handleDemo)
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/console") })
	e.GET("/login", s.handleLoginForm)
	e.POST("/login", s.handleLogin)
	e.POST("/logout", s.handleLogout, s.requireRole(agent.RoleAgent))
	s.consoleRoutes(e)
	s.adminRoutes(e)
	s.surveyRoutes(e)
	assets := http.StripPrefix("/static/", http.FileServerFS(static.FS))
	e.GET("/static/*", func(c echo.Context) error {
		if strings.HasSuffix(c.Request().URL.Path, ".go") {
			return echo.ErrNotFound
		}
		// Websites embed chat-service.js from us: let them, and keep it fresh across deploys.
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		c.Response().Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	return e
}

// contentSecurityPolicy allows our own resources only, plus frames from the co-browse provider.
func (s *Server) contentSecurityPolicy() string {
	csp := "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if tmpl := s.agents.Config().CoBrowseURL; tmpl != "" {
		if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(tmpl)); err == nil && u.Host != "" {
			csp += "; frame-src " + u.Scheme + "://" + u.Host
		}
	}
	return csp
}

// handleError is the one error handler: JSON for APIs and sockets, plain text for pages (the
// console brings a templ error page).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := http.StatusInternalServerError, "internal", "Internal error."
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		status, code = he.Code, strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		msg = http.StatusText(he.Code)
	} else {
		status, code, msg = statusOf(err), agentd.ErrorCode(err), agentd.ErrorMessage(err)
	}
	if status >= 500 {
		s.logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		code, msg = "internal", "Something went wrong on our side. Please try again."
	}
	if wantsHTML(c) {
		_ = render(c, status, templates.ErrorPage(status, http.StatusText(status), msg))
		return
	}
	_ = c.JSON(status, map[string]any{"error": map[string]string{"code": code, "description": msg}})
}

func statusOf(err error) int {
	switch agentd.ErrorClass(err) {
	case agentd.EINVALID:
		return http.StatusBadRequest
	case agentd.ENOTFOUND:
		return http.StatusNotFound
	case agentd.ECONFLICT:
		return http.StatusConflict
	case agentd.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case agentd.EFORBIDDEN:
		return http.StatusForbidden
	case agentd.ERATELIMITED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// render renders a component into a buffer first, so a failed render is an error response and
// not half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) handleDemo(c echo.Context) error {
	return render(c, http.StatusOK, templates.Demo())
}

// originAllowed applies the origin allow-list. Without a list only same-origin pages may connect.
// Requests without an Origin header come from non-browser clients, which could forge it anyway.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	norm := u.Scheme + "://" + strings.ToLower(u.Host)
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || o == norm {
			return true
		}
	}
	return false
}

func newConnID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) handleChatSocket(c echo.Context) error {
	r := c.Request()
	ip := c.RealIP()
	if !s.connLimiter.allow(ip) {
		return c.JSON(http.StatusTooManyRequests, map[string]any{"error": map[string]string{"code": "rate_limited", "description": "Too many connections."}})
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "description": "This endpoint speaks websocket (" + Subprotocol + ")."}})
	}
	if !hasSubprotocol(r, Subprotocol) {
		return c.JSON(http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "unsupported_protocol", "description": "Use the websocket subprotocol " + Subprotocol + "."}})
	}
	s.sockets.Add(1)
	defer s.sockets.Done()
	ws, err := s.upgrader.Upgrade(c.Response(), r, nil)
	if err != nil {
		return nil // the upgrader already answered
	}
	cn := &conn{
		id: newConnID(), ws: ws, srv: s, ip: ip, origin: r.Header.Get("Origin"),
		send: make(chan []byte, sendQueue), wake: make(chan struct{}, 1), done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.CommandsPerSecond), s.cfg.CommandBurst),
	}
	cn.logger = s.logger.With("conn_id", cn.id)
	if !s.originAllowed(r) {
		s.logger.Info("refused customer socket from foreign origin", "origin", cn.origin, "remote_ip", ip)
		b := []byte(`{"type":"error","error":{"code":"origin_not_allowed","description":"This page's origin may not open chat sessions."}}`)
		_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
		_ = ws.WriteMessage(websocket.TextMessage, b)
		cn.closeWith(websocket.ClosePolicyViolation, "origin_not_allowed")
		return nil
	}
	if !s.hub.register(cn) {
		cn.closeWith(websocket.CloseGoingAway, "server shutting down")
		return nil
	}
	go cn.writePump(s.ctx)
	cn.readPump(s.ctx) // the request goroutine is the read pump
	s.hub.unregister(cn)
	return nil
}

func hasSubprotocol(r *http.Request, want string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == want {
			return true
		}
	}
	return false
}
