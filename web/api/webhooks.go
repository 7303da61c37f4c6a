package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/notify"
)

// Webhooks is the webhook service the API manages endpoints and deliveries through
// (notify.Webhooks, docs/webhooks.md).
type Webhooks interface {
	Add(ctx context.Context, rawURL string, events []notify.Type, description string) (notify.Endpoint, string, error)
	List(ctx context.Context) ([]notify.Endpoint, error)
	Get(ctx context.Context, id int64) (notify.Endpoint, error)
	Remove(ctx context.Context, id int64) error
	Rotate(ctx context.Context, id int64) (notify.Endpoint, string, error)
	Resume(ctx context.Context, id int64) (notify.Endpoint, error)
	SendTest(ctx context.Context, id int64) (notify.Delivery, error)
	Redeliver(ctx context.Context, deliveryID string) (notify.Delivery, error)
	Deliveries(ctx context.Context, endpointID int64, limit int) ([]notify.Delivery, error)
	Delivery(ctx context.Context, deliveryID string) (notify.Delivery, error)
	Attempts(ctx context.Context, deliveryID string) ([]notify.Attempt, error)
}

// globalOnly refuses a token bound to a user: webhook endpoints are global, they receive every
// interaction's events, so only a token of the integration itself may manage them. The token's
// name is the actor of the webhook changes' audit rows.
func globalOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t := tokenOf(c)
		if t.UserID != 0 {
			return agentd.Errorf(agentd.EFORBIDDEN, "user_bound_token", "Webhooks are global: a token bound to a user cannot manage them.")
		}
		c.SetRequest(c.Request().WithContext(notify.WithActor(c.Request().Context(), notify.Actor{Token: t.Name})))
		return next(c)
	}
}

// endpointID is the request's webhook endpoint id: a positive integer.
func endpointID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, errInvalid("invalid_id", "A webhook id is a positive integer.")
	}
	return id, nil
}

// deliveryID is the request's delivery id: a UUID.
func deliveryID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return "", errInvalid("invalid_id", "A delivery id is a UUID.")
	}
	return strings.ToLower(id), nil
}

type webhookJSON struct {
	ID                      int64      `json:"id"`
	URL                     string     `json:"url"`
	Events                  []string   `json:"events"` // empty: every type
	Description             string     `json:"description"`
	State                   string     `json:"state"`
	PausedReason            *string    `json:"paused_reason"`
	FailingSince            *time.Time `json:"failing_since"`
	CreatedAt               time.Time  `json:"created_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// webhookSecretJSON is an endpoint with its signing secret: answered only when the secret is
// made (create, rotate), never again.
type webhookSecretJSON struct {
	webhookJSON
	Secret string `json:"secret"`
}

func webhookOf(e notify.Endpoint) webhookJSON {
	out := webhookJSON{ID: e.ID, URL: e.URL, Events: make([]string, len(e.Events)), Description: e.Description,
		State: e.State(), FailingSince: e.FailingSince, CreatedAt: e.CreatedAt, PreviousSecretExpiresAt: e.PreviousExpiresAt}
	for i, t := range e.Events {
		out.Events[i] = string(t)
	}
	if e.PausedReason != "" {
		out.PausedReason = &e.PausedReason
	}
	return out
}

type attemptJSON struct {
	Attempt   int       `json:"attempt"`
	StartedAt time.Time `json:"started_at"`
	Status    *int      `json:"status"` // null: no response
	LatencyMS int64     `json:"latency_ms"`
	Error     string    `json:"error"`
	Response  string    `json:"response"` // the start of the response body
}

type deliveryJSON struct {
	ID            string       `json:"id"`
	WebhookID     int64        `json:"webhook_id"`
	EventID       *string      `json:"event_id"` // null for a test event
	EventType     string       `json:"event_type"`
	State         string       `json:"state"`
	Attempts      int          `json:"attempts"`
	NextAttemptAt *time.Time   `json:"next_attempt_at"`
	CreatedAt     time.Time    `json:"created_at"`
	LastAttempt   *attemptJSON `json:"last_attempt"` // null before the first attempt
}

func statusOf(s int) *int {
	if s == 0 {
		return nil
	}
	return &s
}

func deliveryOf(d notify.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, WebhookID: d.EndpointID, EventType: string(d.EventType), State: d.State,
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt}
	if d.EventID != "" {
		out.EventID = &d.EventID
	}
	if d.LastAttemptAt != nil {
		out.LastAttempt = &attemptJSON{Attempt: d.Attempts, StartedAt: *d.LastAttemptAt, Status: statusOf(d.LastStatus),
			LatencyMS: d.LastLatency.Milliseconds(), Error: d.LastError, Response: d.LastResponse}
	}
	return out
}

func (s *Surface) handleWebhooks(c echo.Context) error {
	es, err := s.webhooks.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]webhookJSON, len(es))
	for i, e := range es {
		out[i] = webhookOf(e)
	}
	return c.JSON(http.StatusOK, map[string]any{"webhooks": out})
}

func (s *Surface) handlePostWebhook(c echo.Context) error {
	var body struct {
		URL         string   `json:"url"`
		Events      []string `json:"events"`
		Description string   `json:"description"`
	}
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	events := make([]notify.Type, len(body.Events))
	for i, t := range body.Events {
		events[i] = notify.Type(t) // the service refuses an unknown type (invalid_event_type)
	}
	e, secret, err := s.webhooks.Add(c.Request().Context(), body.URL, events, body.Description)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, webhookSecretJSON{webhookJSON: webhookOf(e), Secret: secret})
}

func (s *Surface) handleWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	e, err := s.webhooks.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookOf(e))
}

func (s *Surface) handleDeleteWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	if err := s.webhooks.Remove(c.Request().Context(), id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "deleted": true})
}

func (s *Surface) handleRotateWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	e, secret, err := s.webhooks.Rotate(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookSecretJSON{webhookJSON: webhookOf(e), Secret: secret})
}

func (s *Surface) handleResumeWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	e, err := s.webhooks.Resume(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookOf(e))
}

func (s *Surface) handleTestWebhook(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	d, err := s.webhooks.SendTest(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, deliveryOf(d))
}

func (s *Surface) handleWebhookDeliveries(c echo.Context) error {
	id, err := endpointID(c)
	if err != nil {
		return err
	}
	limit := defaultLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return errInvalid("invalid_argument", "limit is a number from 1 to %d.", maxLimit)
		}
		limit = n
	}
	ds, err := s.webhooks.Deliveries(c.Request().Context(), id, limit)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = deliveryOf(d)
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}

func (s *Surface) handleDelivery(c echo.Context) error {
	id, err := deliveryID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := s.webhooks.Delivery(ctx, id)
	if err != nil {
		return err
	}
	as, err := s.webhooks.Attempts(ctx, id)
	if err != nil {
		return err
	}
	out := make([]attemptJSON, len(as))
	for i, a := range as {
		out[i] = attemptJSON{Attempt: a.Attempt, StartedAt: a.StartedAt, Status: statusOf(a.Status),
			LatencyMS: a.Latency.Milliseconds(), Error: a.Error, Response: a.Response}
	}
	return c.JSON(http.StatusOK, map[string]any{"delivery": deliveryOf(d), "attempts": out})
}

func (s *Surface) handleRedeliver(c echo.Context) error {
	id, err := deliveryID(c)
	if err != nil {
		return err
	}
	d, err := s.webhooks.Redeliver(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, deliveryOf(d))
}
