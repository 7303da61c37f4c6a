// Package customer is the customer's surface: the websocket that chat-service.js speaks
// (docs/protocol.md, subprotocol agentd-chat.v1), its commands, the catch-up of a connection
// from Postgres by transcript index and side-channel seq, the queue positions pushed to waiting
// customers, and the demo customer page. It runs on the web core's connection and hub and calls
// the chat service through the Chat interface below.
package customer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/templates"
)

// Subprotocol is the websocket subprotocol of docs/protocol.md.
const Subprotocol = "agentd-chat.v1"

// hardFrameLimit is where gorilla stops reading and closes with 1009. Frames between the
// configured soft limit and this one are answered with frame_too_large and the socket lives.
const hardFrameLimit = 1 << 20

// Config is the customer surface's configuration (docs/configuration.md).
type Config struct {
	// AllowedOrigins lists the origins (scheme://host[:port]) whose pages may open customer
	// sockets. Empty means same-origin only; a single "*" allows any origin.
	AllowedOrigins []string
	// MaxFrameBytes is the largest command frame accepted.
	MaxFrameBytes int
	// CommandsPerSecond and CommandBurst (AGENTD_COMMANDS_PER_SECOND) limit the frames of one
	// connection: every frame counts, commands and anything else the client sends, before it is
	// decoded (web.ConnOptions.FramesPerSecond).
	CommandsPerSecond float64
	CommandBurst      int
	// StartsPerMinute and StartBurst limit new sessions per client address.
	StartsPerMinute int
	StartBurst      int
	// ConnectsPerMinute and ConnectBurst limit websocket upgrades per client address.
	ConnectsPerMinute int
	ConnectBurst      int
	// WriteWait bounds every write to a customer socket (10 s when 0; tests shorten it).
	WriteWait time.Duration
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
			return nil, errors.New("invalid origin " + quote(o) + ": expected scheme://host[:port], e.g. https://www.example.com")
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	return out, nil
}

func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// Chat is what the customer surface needs from the chat service.
type Chat interface {
	Start(ctx context.Context, p chat.StartParams) (chat.Session, error)
	Restore(ctx context.Context, interactionID, secureKey string) (chat.Session, error)
	SessionUsed(ctx context.Context, interactionID string) error
	Interaction(ctx context.Context, interactionID string) (chat.Interaction, error)
	Send(ctx context.Context, p chat.Party, commandID, text, contentType string) (chat.Event, error)
	SendTyping(ctx context.Context, p chat.Party, isTyping bool, text string) (time.Time, error)
	Leave(ctx context.Context, p chat.Party, commandID string) (time.Time, error)
	Transcript(ctx context.Context, interactionID string, fromIndex, limit int) ([]chat.Event, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error)
	CustomerReadable(ctx context.Context, interactionID string) (chat.Interaction, error)
	ChangeUserData(ctx context.Context, p chat.Party, commandID string, changes []userdata.Change) (chat.ChangeResult, error)
	CustomerUserData(ctx context.Context, interactionID, key string) (json.RawMessage, bool, error)
	SendNotice(ctx context.Context, p chat.Party, commandID string, payload json.RawMessage) (chat.Notice, error)
}

// Deps is what the customer surface is built from.
type Deps struct {
	Config Config
	// PublicURL is agentd's base URL as customers reach it (AGENTD_PUBLIC_URL): pages of agentd's
	// own origin, such as /demo, may always open customer sockets.
	PublicURL string
	Chat      Chat
	Sockets   *web.Sockets
	Positions *QueuePositions
	Metrics   *web.Metrics // may be nil
	Logger    *slog.Logger
}

// Surface serves /ws/chat and /demo.
type Surface struct {
	cfg          Config
	ownOrigin    string // scheme://host[:port] of PublicURL
	chat         Chat
	sockets      *web.Sockets
	hub          *web.Hub
	frames       eventFrames // event frames shared by the sockets of an interaction
	positions    *QueuePositions
	metrics      *web.Metrics
	logger       *slog.Logger
	startLimiter *web.IPLimiter
	connLimiter  *web.IPLimiter
}

// New returns the customer surface.
func New(d Deps) *Surface {
	cfg := d.Config
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
	own := ""
	if u, err := url.Parse(d.PublicURL); err == nil && u.Host != "" {
		own = u.Scheme + "://" + strings.ToLower(u.Host)
	}
	return &Surface{
		cfg: cfg, ownOrigin: own, chat: d.Chat, sockets: d.Sockets, hub: d.Sockets.Hub(), positions: d.Positions, metrics: d.Metrics, logger: d.Logger,
		startLimiter: web.NewIPLimiter(cfg.StartsPerMinute, cfg.StartBurst),
		connLimiter:  web.NewIPLimiter(cfg.ConnectsPerMinute, cfg.ConnectBurst),
	}
}

// Register adds the surface's routes.
func (s *Surface) Register(e *echo.Echo) {
	e.GET("/ws/chat", s.handleSocket)
	e.GET("/demo", s.handleDemo)
}

func (s *Surface) handleDemo(c echo.Context) error {
	return web.Render(c, http.StatusOK, templates.Demo())
}

// originAllowed applies the origin allow-list. An origin is scheme, host and port, all three
// compared. agentd's own origin is always allowed, as AGENTD_PUBLIC_URL says it and as this
// request reached it; AGENTD_ALLOWED_ORIGINS adds the websites that embed the chat. Requests
// without an Origin header come from non-browser clients, which could forge it anyway.
func (s *Surface) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	norm := u.Scheme + "://" + strings.ToLower(u.Host)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if norm == s.ownOrigin || norm == scheme+"://"+strings.ToLower(r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || o == norm {
			return true
		}
	}
	return false
}

func jsonError(c echo.Context, status int, code, description string) error {
	return c.JSON(status, map[string]any{"error": map[string]string{"code": code, "description": description}})
}

func (s *Surface) handleSocket(c echo.Context) error {
	r := c.Request()
	ip := c.RealIP()
	if !s.connLimiter.Allow(ip) {
		return jsonError(c, http.StatusTooManyRequests, "rate_limited", "Too many connections.")
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return jsonError(c, http.StatusBadRequest, "bad_request", "This endpoint speaks websocket ("+Subprotocol+").")
	}
	if !hasSubprotocol(r, Subprotocol) {
		return jsonError(c, http.StatusBadRequest, "unsupported_protocol", "Use the websocket subprotocol "+Subprotocol+".")
	}
	origin := r.Header.Get("Origin")
	allowed := s.originAllowed(r)
	opts := web.ConnOptions{Surface: "customer", Subprotocols: []string{Subprotocol}, ReadLimit: hardFrameLimit, WriteWait: s.cfg.WriteWait,
		FramesPerSecond: s.cfg.CommandsPerSecond, FrameBurst: s.cfg.CommandBurst}
	// Detached: an idle customer socket holds neither this goroutine nor the request (nothing
	// below keeps c).
	var cn *conn
	return s.sockets.Detach(c, opts, func(wc *web.Conn) (web.Handler, web.Subscriber, *web.CloseReason) {
		if !allowed {
			s.logger.Info("refused customer socket from foreign origin", "origin", origin, "remote_ip", ip)
			wc.WriteDirect(web.Error("origin_not_allowed", "This page's origin may not open chat sessions."))
			return nil, nil, &web.CloseOriginNotAllowed
		}
		cn = newConn(s, wc, ip, origin)
		return cn, cn, nil
	}, func() {
		if cn != nil {
			s.positions.remove(cn)
		}
	})
}

func hasSubprotocol(r *http.Request, want string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == want {
			return true
		}
	}
	return false
}
