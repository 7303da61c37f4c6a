// Package api is the integrator REST API, /api/v1 (docs/api.md, and the OpenAPI document
// openapi.json beside this file, served at /api/v1/openapi.json): interactions with their
// transcript, UserData and notices, UserData writes and notices by integrations, the agents'
// presence, the event stream, and the webhook endpoints with their deliveries. Every request but the document's carries an API token (Authorization: Bearer …);
// every answer is JSON, errors included ({"error": {"code", "description"}}).
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
	"agentd/web"
)

// OpenAPI is the API's OpenAPI 3.1 document, kept in the repository and tested against the
// routes and the handlers' answers (cmd/agentd/api_test.go).
//
//go:embed openapi.json
var OpenAPI []byte

// Tokens authenticates API tokens (postgres.TokenStore).
type Tokens interface {
	Authenticate(ctx context.Context, secret string) (notify.Token, error)
}

// Store is the API's own read models (postgres.APIStore).
type Store interface {
	Interactions(ctx context.Context, f notify.InteractionFilter) ([]notify.InteractionSummary, error)
	AssignedTo(ctx context.Context, interactionID string, userID int64) error
	Agents(ctx context.Context) ([]notify.AgentStatus, error)
}

// Chat is what the API reads and writes through the chat core (chat.Service): UserData goes
// through its rules and limits, and every change reaches the customer and the console as any
// other does.
type Chat interface {
	Interaction(ctx context.Context, interactionID string) (chat.Interaction, error)
	WholeTranscript(ctx context.Context, interactionID string) ([]chat.Event, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error)
	UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error)
	UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error)
	ChangeUserDataAs(ctx context.Context, interactionID string, owner userdata.Owner, actorName string, changes []userdata.Change) (chat.ChangeResult, error)
	SendIntegrationNotice(ctx context.Context, interactionID string, sender userdata.Owner, audience chat.Audience, payload json.RawMessage) (chat.Notice, error)
}

// History is what the API reads of a chat's wrap-up and survey (agent.History).
type History interface {
	WrapInfo(ctx context.Context, interactionID string) (disposition, notes string, err error)
	SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error)
}

// Config is the API's configuration.
type Config struct {
	// Rate is each token's sustained limit in requests per second (AGENTD_API_RATE), Burst the
	// requests it may make at once (AGENTD_API_BURST).
	Rate  float64
	Burst int
}

// DefaultConfig is the API's configuration by default.
var DefaultConfig = Config{Rate: 20, Burst: 40}

// Deps is what the API is built from.
type Deps struct {
	Tokens  Tokens
	Events  Events       // the event stream's reads (postgres.EventStore)
	Sockets *web.Sockets // the node's websocket core, for the event stream
	Streams *Streams     // the node's event streams, woken by its fan-out
	Store   Store
	Chat    Chat
	History History
	// Webhooks manages the webhook endpoints and their deliveries (notify.Webhooks).
	Webhooks Webhooks
	Config   Config
	Logger   *slog.Logger
}

// Surface serves /api/v1.
type Surface struct {
	tokens   Tokens
	store    Store
	chat     Chat
	history  History
	limits   *tokenLimiter
	logger   *slog.Logger
	events   Events
	sockets  *web.Sockets
	streams  *Streams
	webhooks Webhooks
}

// New returns the API surface.
func New(d Deps) *Surface {
	cfg := d.Config
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultConfig.Rate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultConfig.Burst
	}
	s := &Surface{tokens: d.Tokens, store: d.Store, chat: d.Chat, history: d.History,
		limits: newTokenLimiter(cfg.Rate, cfg.Burst), logger: d.Logger,
		events: d.Events, sockets: d.Sockets, streams: d.Streams, webhooks: d.Webhooks}
	if s.streams == nil {
		s.streams = NewStreams()
	}
	return s
}

// Register adds the API's routes. The checks are on each route, not on an Echo group, whose
// middleware would also answer every unknown URL under the prefix (and add routes of its own).
func (s *Surface) Register(e *echo.Echo) {
	read, write := s.require(notify.ScopeRead), s.require(notify.ScopeWrite)
	e.GET("/api/v1/openapi.json", s.handleOpenAPI)
	e.GET("/api/v1/interactions", s.handleInteractions, read)
	e.GET("/api/v1/interactions/:id", s.handleInteraction, read)
	e.GET("/api/v1/interactions/:id/userdata/history", s.handleUserDataHistory, read)
	e.PUT("/api/v1/interactions/:id/userdata", s.handlePutUserData, readBody, write)
	e.DELETE("/api/v1/interactions/:id/userdata/:key", s.handleDeleteUserData, write)
	e.POST("/api/v1/interactions/:id/notices", s.handlePostNotice, readBody, write)
	e.GET("/api/v1/agents", s.handleAgents, read)
	e.GET("/api/v1/events", s.handleEvents)
	hooks := s.require(notify.ScopeWebhooks)
	e.GET("/api/v1/webhooks", s.handleWebhooks, hooks, globalOnly)
	e.POST("/api/v1/webhooks", s.handlePostWebhook, readBody, hooks, globalOnly)
	e.GET("/api/v1/webhooks/:id", s.handleWebhook, hooks, globalOnly)
	e.DELETE("/api/v1/webhooks/:id", s.handleDeleteWebhook, hooks, globalOnly)
	e.POST("/api/v1/webhooks/:id/rotate", s.handleRotateWebhook, noBody, hooks, globalOnly)
	e.POST("/api/v1/webhooks/:id/resume", s.handleResumeWebhook, noBody, hooks, globalOnly)
	e.POST("/api/v1/webhooks/:id/test", s.handleTestWebhook, noBody, hooks, globalOnly)
	e.GET("/api/v1/webhooks/:id/deliveries", s.handleWebhookDeliveries, hooks, globalOnly)
	e.GET("/api/v1/deliveries/:id", s.handleDelivery, hooks, globalOnly)
	e.POST("/api/v1/deliveries/:id/redeliver", s.handleRedeliver, noBody, hooks, globalOnly)
}

// bodyKey is where readBody leaves the request's JSON body.
const bodyKey = "api_body"

// readBody reads a route's JSON body (at most maxBody) before anything else, so that an
// oversized one is refused with 413 before it is sent, whoever sends it.
func readBody(next echo.HandlerFunc) echo.HandlerFunc { return bodyUpTo(maxBody)(next) }

// noBody is readBody for the POST routes that take no body (an action on a webhook or a
// delivery): a client may send {} or nothing; anything larger is refused before it is sent.
var noBody = bodyUpTo(1 << 10)

func bodyUpTo(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			b, err := web.ReadJSONBody(c, limit)
			if err != nil {
				return err
			}
			c.Set(bodyKey, b)
			return next(c)
		}
	}
}

func (s *Surface) handleOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/json", OpenAPI)
}
