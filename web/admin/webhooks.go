package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/notify"
	"agentd/web"
	"agentd/web/templates"
)

// Webhooks is what the webhook pages need (notify.Webhooks).
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
}

// webhookLogSize is how many deliveries an endpoint's page shows.
const webhookLogSize = 100

// registerWebhooks adds /admin/webhooks to the admin group g.
func (s *Surface) registerWebhooks(g *echo.Group) {
	g.GET("/webhooks", s.handleWebhooks)
	g.POST("/webhooks", s.handleWebhookAdd, webhookActor)
	g.GET("/webhooks/:id", s.handleWebhook)
	g.POST("/webhooks/:id/test", s.handleWebhookTest, webhookActor)
	g.POST("/webhooks/:id/rotate", s.handleWebhookRotate, webhookActor)
	g.POST("/webhooks/:id/resume", s.handleWebhookResume, webhookActor)
	g.POST("/webhooks/:id/delete", s.handleWebhookDelete, webhookActor)
	g.POST("/webhooks/:id/deliveries/:delivery/redeliver", s.handleWebhookRedeliver, webhookActor)
}

// webhookActor makes the signed-in admin the actor of the webhook change's audit row.
func webhookActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := notify.WithActor(c.Request().Context(), notify.Actor{UserID: web.CurrentUser(c).ID})
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// webhookFlashes are the fixed confirmations of the webhook pages' redirects.
var webhookFlashes = []struct{ param, text string }{
	{"sent", "Test event queued: it appears in the delivery log below."},
	{"redelivered", "Delivery queued again."},
	{"deleted", "Endpoint removed."},
	{"resumed", "Endpoint resumed: new events are delivered to it again. Deliveries cancelled while it was paused are not sent unless you redeliver them."},
}

func webhookFrame(c echo.Context, title string) templates.AdminFrame {
	f := templates.AdminFrame{Title: title, Section: "webhooks"}
	for _, fl := range webhookFlashes {
		if c.QueryParam(fl.param) != "" {
			f.Flash = fl.text
		}
	}
	return f
}

func webhookEvents(ts []notify.Type) string {
	if len(ts) == 0 {
		return "all events"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func webhookRow(e notify.Endpoint) templates.AdminWebhookRow {
	return templates.AdminWebhookRow{ID: e.ID, URL: e.URL, Events: webhookEvents(e.Events), Description: e.Description,
		State: e.State(), PausedReason: e.PausedReason, Created: adminTime(e.CreatedAt)}
}

func (s *Surface) renderWebhooks(c echo.Context, status int, form templates.AdminWebhookForm, checked map[string]bool) error {
	es, err := s.webhooks.List(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]templates.AdminWebhookRow, len(es))
	for i, e := range es {
		rows[i] = webhookRow(e)
	}
	for _, t := range notify.Types {
		form.Events = append(form.Events, templates.AdminOption{Value: string(t), Label: string(t), Selected: checked[string(t)]})
	}
	return web.Render(c, status, templates.AdminWebhooks(web.Viewer(c), webhookFrame(c, "Webhooks"), rows, form))
}

func (s *Surface) handleWebhooks(c echo.Context) error {
	return s.renderWebhooks(c, http.StatusOK, templates.AdminWebhookForm{}, nil)
}

func (s *Surface) handleWebhookAdd(c echo.Context) error {
	form, err := formValues(c)
	if err != nil {
		return err
	}
	f := templates.AdminWebhookForm{URL: form.Get("url"), Description: form.Get("description")}
	checked := map[string]bool{}
	var types []notify.Type
	for _, t := range form["events"] {
		checked[t] = true
		types = append(types, notify.Type(t))
	}
	e, secret, err := s.webhooks.Add(c.Request().Context(), f.URL, types, f.Description)
	if err != nil {
		switch {
		case agentd.ErrorCode(err) == "invalid_webhook_url":
			f.Errors = map[string]string{"url": agentd.ErrorMessage(err)}
		case agentd.ErrorClass(err) == agentd.EINVALID:
			f.Error = agentd.ErrorMessage(err)
		default:
			return err
		}
		return s.renderWebhooks(c, http.StatusUnprocessableEntity, f, checked)
	}
	// The secret is in this answer only, not kept to show after a redirect: opening the
	// endpoint's page again does not show it.
	return s.renderWebhook(c, http.StatusCreated, e, secret, "Endpoint added.")
}

func (s *Surface) renderWebhook(c echo.Context, status int, e notify.Endpoint, secret, flash string) error {
	ds, err := s.webhooks.Deliveries(c.Request().Context(), e.ID, webhookLogSize)
	if err != nil {
		return err
	}
	w := templates.AdminWebhook{Endpoint: webhookRow(e), Secret: secret}
	if secret != "" && e.PreviousExpiresAt != nil && e.PreviousExpiresAt.After(time.Now()) {
		w.PreviousExpiry = adminTime(*e.PreviousExpiresAt)
	}
	for _, d := range ds {
		row := templates.AdminWebhookDelivery{ID: d.ID, Event: string(d.EventType), State: d.State, Attempts: d.Attempts,
			LastStatus: "—", Latency: "—", Error: d.LastError, Response: d.LastResponse, NextAttempt: "—", Created: adminTime(d.CreatedAt)}
		if d.LastAttemptAt != nil {
			row.Latency = strconv.FormatInt(d.LastLatency.Milliseconds(), 10) + " ms"
			row.LastStatus = "no response"
			if d.LastStatus != 0 {
				row.LastStatus = strconv.Itoa(d.LastStatus)
			}
		}
		if d.State == notify.DeliveryPending && d.NextAttemptAt != nil {
			row.NextAttempt = adminTime(*d.NextAttemptAt)
		}
		w.Deliveries = append(w.Deliveries, row)
	}
	f := webhookFrame(c, "Webhook "+strconv.FormatInt(e.ID, 10))
	if flash != "" {
		f.Flash = flash
	}
	return web.Render(c, status, templates.AdminWebhookPage(web.Viewer(c), f, w))
}

func (s *Surface) webhookOf(c echo.Context) (notify.Endpoint, error) {
	id, err := pathID(c)
	if err != nil {
		return notify.Endpoint{}, err
	}
	return s.webhooks.Get(c.Request().Context(), id)
}

func webhookURL(id int64, query string) string {
	return "/admin/webhooks/" + strconv.FormatInt(id, 10) + query
}

func (s *Surface) handleWebhook(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	return s.renderWebhook(c, http.StatusOK, e, "", "")
}

func (s *Surface) handleWebhookTest(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	if _, err := s.webhooks.SendTest(c.Request().Context(), e.ID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, webhookURL(e.ID, "?sent=1"))
}

func (s *Surface) handleWebhookRotate(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	e, secret, err := s.webhooks.Rotate(c.Request().Context(), e.ID)
	if err != nil {
		return err
	}
	return s.renderWebhook(c, http.StatusOK, e, secret, "Secret rotated.")
}

func (s *Surface) handleWebhookResume(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	if _, err := s.webhooks.Resume(c.Request().Context(), e.ID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin/webhooks?resumed=1")
}

func (s *Surface) handleWebhookDelete(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	if err := s.webhooks.Remove(c.Request().Context(), e.ID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin/webhooks?deleted=1")
}

func (s *Surface) handleWebhookRedeliver(c echo.Context) error {
	e, err := s.webhookOf(c)
	if err != nil {
		return err
	}
	ds, err := s.webhooks.Deliveries(c.Request().Context(), e.ID, webhookLogSize)
	if err != nil {
		return err
	}
	id := c.Param("delivery")
	for _, d := range ds {
		if d.ID == id {
			if _, err := s.webhooks.Redeliver(c.Request().Context(), id); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, webhookURL(e.ID, "?redelivered=1"))
		}
	}
	return agentd.Errorf(agentd.ENOTFOUND, "delivery_not_found", "This endpoint has no such delivery.")
}
