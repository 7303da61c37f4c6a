package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"agentd"
	"agentd/notify"
)

// WebhookStore keeps webhook endpoints, deliveries and attempts (notify.WebhookStore). Signing
// secrets are stored as they are: a receiver checks an HMAC made with the very secret, so it
// cannot be hashed (docs/webhooks.md says so). Every delivery is created together with its
// River deliver job, in one transaction.
type WebhookStore struct {
	db   *DB
	jobs *river.Client[pgx.Tx] // insert-only
}

// NewWebhookStore returns the webhook store of db.
func NewWebhookStore(db *DB) *WebhookStore {
	// An insert-only River client (no queues, no workers) cannot fail to build on a valid pool.
	jobs, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	if err != nil {
		panic(fmt.Sprintf("postgres: River insert client: %v", err))
	}
	return &WebhookStore{db: db, jobs: jobs}
}

var _ notify.WebhookStore = (*WebhookStore)(nil)

func errEndpointNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "webhook_not_found", "No webhook endpoint has that id.")
}

func errDeliveryNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "delivery_not_found", "No webhook delivery has that id.")
}

const endpointColumns = `w.id, w.url, w.events, w.description, w.enabled, w.paused_reason, w.failing_since,
	w.created_at, w.previous_expires_at`

func scanEndpoint(row pgx.CollectableRow) (notify.Endpoint, error) {
	var e notify.Endpoint
	var events []string
	err := row.Scan(&e.ID, &e.URL, &events, &e.Description, &e.Enabled, &e.PausedReason, &e.FailingSince,
		&e.CreatedAt, &e.PreviousExpiresAt)
	for _, t := range events {
		e.Events = append(e.Events, notify.Type(t))
	}
	return e, err
}

func (s *WebhookStore) deliverJob(id string) river.InsertManyParams {
	return river.InsertManyParams{Args: notify.DeliverArgs{DeliveryID: id},
		InsertOpts: &river.InsertOpts{Queue: notify.Queue, MaxAttempts: notify.DeliverMaxAttempts}}
}

// webhookAudit writes a webhook change's audit row in its transaction: by the admin
// actor.UserID (NULL for the CLI and the API), with the API token's name in the details. The
// details never carry a signing secret.
func webhookAudit(ctx context.Context, tx pgx.Tx, actor notify.Actor, action, target string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	if actor.Token != "" {
		details["token"] = actor.Token
	}
	return audit(ctx, tx, actor.UserID, action, target, details)
}

func endpointTarget(id int64) string { return strconv.FormatInt(id, 10) }

func eventStrings(ts []notify.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// AddEndpoint stores an endpoint, audited as webhook.add.
func (s *WebhookStore) AddEndpoint(ctx context.Context, actor notify.Actor, n notify.NewEndpoint) (notify.Endpoint, error) {
	events := eventStrings(n.Events)
	var e notify.Endpoint
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO webhook_endpoints AS w (url, events, description, secret)
			VALUES ($1, $2, $3, $4) RETURNING `+endpointColumns, n.URL, events, n.Description, n.Secret)
		if err != nil {
			return err
		}
		if e, err = pgx.CollectExactlyOneRow(rows, scanEndpoint); err != nil {
			return err
		}
		return webhookAudit(ctx, tx, actor, "webhook.add", endpointTarget(e.ID),
			map[string]any{"url": e.URL, "events": events, "description": e.Description})
	})
	return e, translate(err)
}

// Endpoints returns every endpoint, oldest first.
func (s *WebhookStore) Endpoints(ctx context.Context) ([]notify.Endpoint, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w ORDER BY w.id`)
	if err != nil {
		return nil, translate(err)
	}
	es, err := pgx.CollectRows(rows, scanEndpoint)
	return es, translate(err)
}

// Endpoint returns one endpoint.
func (s *WebhookStore) Endpoint(ctx context.Context, id int64) (notify.Endpoint, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w WHERE w.id = $1`, id)
	if err != nil {
		return notify.Endpoint{}, translate(err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	return e, translate(err, errEndpointNotFound())
}

// RemoveEndpoint deletes an endpoint, audited as webhook.remove; its deliveries and attempts
// go with it, and their pending jobs find nothing and cancel themselves.
func (s *WebhookStore) RemoveEndpoint(ctx context.Context, actor notify.Actor, id int64) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var url string
		err := tx.QueryRow(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 RETURNING url`, id).Scan(&url)
		if err != nil {
			return translate(err, errEndpointNotFound())
		}
		return webhookAudit(ctx, tx, actor, "webhook.remove", endpointTarget(id), map[string]any{"url": url})
	})
}

// updateEndpoint runs an UPDATE … RETURNING endpointColumns of one endpoint and audits it.
func (s *WebhookStore) updateEndpoint(ctx context.Context, actor notify.Actor, action string, id int64, details map[string]any,
	sql string, args ...any) (notify.Endpoint, error) {
	var e notify.Endpoint
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		if e, err = pgx.CollectExactlyOneRow(rows, scanEndpoint); err != nil {
			return translate(err, errEndpointNotFound())
		}
		return webhookAudit(ctx, tx, actor, action, endpointTarget(id), details)
	})
	return e, translate(err)
}

// RotateSecret makes secret current and keeps the old one valid until previousUntil, audited
// as webhook.rotate (with neither secret).
func (s *WebhookStore) RotateSecret(ctx context.Context, actor notify.Actor, id int64, secret string, previousUntil time.Time) (notify.Endpoint, error) {
	return s.updateEndpoint(ctx, actor, "webhook.rotate", id, map[string]any{"previous_expires_at": previousUntil.UTC()},
		`UPDATE webhook_endpoints w SET previous_secret = w.secret, secret = $2,
		previous_expires_at = $3 WHERE w.id = $1 RETURNING `+endpointColumns, id, secret, previousUntil)
}

// ResumeEndpoint clears a paused endpoint's pause and failing_since, audited as webhook.resume
// with the reason it was paused for; ECONFLICT webhook_not_paused when it is not paused.
func (s *WebhookStore) ResumeEndpoint(ctx context.Context, actor notify.Actor, id int64) (notify.Endpoint, error) {
	var e notify.Endpoint
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var reason string
		err := tx.QueryRow(ctx, `SELECT paused_reason FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, id).Scan(&reason)
		if err != nil {
			return translate(err, errEndpointNotFound())
		}
		if reason == "" {
			return agentd.Errorf(agentd.ECONFLICT, "webhook_not_paused", "This webhook endpoint is not paused.")
		}
		rows, err := tx.Query(ctx, `UPDATE webhook_endpoints w SET paused_reason = '', failing_since = NULL
			WHERE w.id = $1 RETURNING `+endpointColumns, id)
		if err != nil {
			return err
		}
		if e, err = pgx.CollectExactlyOneRow(rows, scanEndpoint); err != nil {
			return err
		}
		return webhookAudit(ctx, tx, actor, "webhook.resume", endpointTarget(id), map[string]any{"paused_reason": reason})
	})
	return e, translate(err)
}

// CreateTestDelivery stores a ping delivery of ev (its body kept on the delivery) and its job.
// Audited as webhook.test.
func (s *WebhookStore) CreateTestDelivery(ctx context.Context, actor notify.Actor, endpointID int64, ev notify.Event) (notify.Delivery, error) {
	body, err := ev.Body()
	if err != nil {
		return notify.Delivery{}, err
	}
	var id string
	err = s.db.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_type, body, next_attempt_at)
			SELECT id, $2, $3, now() FROM webhook_endpoints WHERE id = $1 RETURNING id`, endpointID, string(ev.Type), body).Scan(&id)
		if err != nil {
			return translate(err, errEndpointNotFound())
		}
		if _, err = s.jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{s.deliverJob(id)}); err != nil {
			return err
		}
		return webhookAudit(ctx, tx, actor, "webhook.test", endpointTarget(endpointID), map[string]any{"delivery_id": id})
	})
	if err != nil {
		return notify.Delivery{}, err
	}
	return s.delivery(ctx, id)
}

// Redeliver puts a delivery back to pending and queues a new job for it (same delivery id),
// audited as webhook.redeliver.
func (s *WebhookStore) Redeliver(ctx context.Context, actor notify.Actor, deliveryID string) (notify.Delivery, error) {
	if !validUUID(deliveryID) {
		return notify.Delivery{}, errDeliveryNotFound()
	}
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var endpointID int64
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now() WHERE id = $1
			RETURNING endpoint_id`, deliveryID).Scan(&endpointID)
		if err != nil {
			return translate(err, errDeliveryNotFound())
		}
		if _, err = s.jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{s.deliverJob(deliveryID)}); err != nil {
			return err
		}
		return webhookAudit(ctx, tx, actor, "webhook.redeliver", deliveryID, map[string]any{"endpoint_id": endpointID})
	})
	if err != nil {
		return notify.Delivery{}, err
	}
	return s.delivery(ctx, deliveryID)
}

const deliveryColumns = `d.id, d.endpoint_id, coalesce(d.event_id::text, ''), d.event_type, d.state, d.attempts,
	d.next_attempt_at, d.created_at, coalesce(a.status, 0), coalesce(a.latency_ms, 0), coalesce(a.error, ''),
	coalesce(a.response, ''), a.started_at`

const deliveryFrom = ` FROM webhook_deliveries d LEFT JOIN LATERAL (SELECT * FROM webhook_attempts a
	WHERE a.delivery_id = d.id ORDER BY a.attempt DESC LIMIT 1) a ON true`

func scanDelivery(row pgx.CollectableRow) (notify.Delivery, error) {
	var d notify.Delivery
	var ms int64
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.State, &d.Attempts, &d.NextAttemptAt,
		&d.CreatedAt, &d.LastStatus, &ms, &d.LastError, &d.LastResponse, &d.LastAttemptAt)
	d.LastLatency = time.Duration(ms) * time.Millisecond
	return d, err
}

func (s *WebhookStore) delivery(ctx context.Context, id string) (notify.Delivery, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.id = $1`, id)
	if err != nil {
		return notify.Delivery{}, translate(err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	return d, translate(err, errDeliveryNotFound())
}

// Delivery returns one delivery (ENOTFOUND delivery_not_found for an unknown id).
func (s *WebhookStore) Delivery(ctx context.Context, id string) (notify.Delivery, error) {
	if !validUUID(id) {
		return notify.Delivery{}, errDeliveryNotFound()
	}
	return s.delivery(ctx, id)
}

// Deliveries returns an endpoint's latest deliveries, newest first.
func (s *WebhookStore) Deliveries(ctx context.Context, endpointID int64, limit int) ([]notify.Delivery, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.endpoint_id = $1
		ORDER BY d.created_at DESC, d.id LIMIT $2`, endpointID, limit)
	if err != nil {
		return nil, translate(err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	return ds, translate(err)
}

// Attempts returns a delivery's attempts in order.
func (s *WebhookStore) Attempts(ctx context.Context, deliveryID string) ([]notify.Attempt, error) {
	if !validUUID(deliveryID) {
		return nil, errDeliveryNotFound()
	}
	if _, err := s.delivery(ctx, deliveryID); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT delivery_id, attempt, started_at, latency_ms, status, error, response
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt`, deliveryID)
	if err != nil {
		return nil, translate(err)
	}
	as, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notify.Attempt, error) {
		var a notify.Attempt
		var ms int64
		err := row.Scan(&a.DeliveryID, &a.Attempt, &a.StartedAt, &ms, &a.Status, &a.Error, &a.Response)
		a.Latency = time.Duration(ms) * time.Millisecond
		return a, err
	})
	return as, translate(err)
}

// CreateDeliveries creates, for the events transaction tx wrote, one delivery per event and
// enabled, un-paused endpoint whose filter takes the event's type, each with its deliver job in
// the same transaction. A delivery that exists already (a retried dispatch) is not made again.
func (s *WebhookStore) CreateDeliveries(ctx context.Context, txID uint64) (int, error) {
	n := 0
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, next_attempt_at)
			SELECT w.id, e.event_id, e.type, jsonb_build_object('id', e.event_id, 'type', e.type,
				'created_at', e.created_at, 'data', e.data), now()
			FROM integration_events e
			JOIN webhook_endpoints w ON w.enabled AND w.paused_reason = '' AND (w.events = '{}' OR e.type = ANY (w.events))
			WHERE e.tx_id = $1::xid8
			ORDER BY e.id, w.id
			ON CONFLICT (event_id, endpoint_id) DO NOTHING
			RETURNING id`, fmt.Sprint(txID))
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		params := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			params[i] = s.deliverJob(id)
		}
		n = len(ids)
		_, err = s.jobs.InsertManyTx(ctx, tx, params)
		return err
	})
	return n, err
}

// Target reads a delivery, its endpoint, the body to send and the secrets valid at now.
func (s *WebhookStore) Target(ctx context.Context, deliveryID string, now time.Time) (notify.Target, error) {
	if !validUUID(deliveryID) {
		return notify.Target{}, errDeliveryNotFound()
	}
	d, err := s.delivery(ctx, deliveryID)
	if err != nil {
		return notify.Target{}, err
	}
	e, err := s.Endpoint(ctx, d.EndpointID)
	if err != nil {
		return notify.Target{}, err
	}
	var secret string
	var previous *string
	var body []byte
	err = s.db.Pool.QueryRow(ctx, `SELECT w.secret, CASE WHEN w.previous_expires_at > $2 THEN w.previous_secret END, d.body
		FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = $1`, deliveryID, now).
		Scan(&secret, &previous, &body)
	if err != nil {
		return notify.Target{}, translate(err, errDeliveryNotFound())
	}
	// The body is rebuilt by Event.Body from what was stored, so it is byte for byte the body a
	// delivery of the event has, whatever order jsonb keeps its keys in.
	var ev notify.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return notify.Target{}, fmt.Errorf("delivery %s: stored body: %w", deliveryID, err)
	}
	t := notify.Target{Delivery: d, Endpoint: e, Secrets: []string{secret}}
	if previous != nil {
		t.Secrets = append(t.Secrets, *previous)
	}
	if t.Body, err = ev.Body(); err != nil {
		return notify.Target{}, err
	}
	return t, nil
}

// RecordAttempt writes one attempt and its outcome: the delivery's state, attempts and next
// attempt; the endpoint's failing_since (cleared by a success, set by the first failure) and
// its pause (410, or failing since before r.PauseFailingBefore).
func (s *WebhookStore) RecordAttempt(ctx context.Context, r notify.AttemptResult, now time.Time) error {
	state := map[notify.Outcome]string{notify.OutcomeDelivered: notify.DeliveryDelivered,
		notify.OutcomeRetry: notify.DeliveryPending, notify.OutcomeFailed: notify.DeliveryFailed}[r.Outcome]
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var n int
		var endpointID int64
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, state = $2, next_attempt_at = $3
			WHERE id = $1 RETURNING attempts, endpoint_id`, r.DeliveryID, state, r.NextAttemptAt).Scan(&n, &endpointID)
		if err != nil {
			return translate(err, errDeliveryNotFound())
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, started_at, latency_ms, status, error, response)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.DeliveryID, n, r.StartedAt, r.Latency.Milliseconds(), r.Status, r.Error, r.Response); err != nil {
			return err
		}
		if r.Outcome == notify.OutcomeDelivered {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1`, endpointID)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, $2),
			paused_reason = CASE
				WHEN paused_reason <> '' THEN paused_reason
				WHEN $3 <> '' THEN $3
				WHEN coalesce(failing_since, $2) < $4 THEN 'Every delivery failed since ' ||
					to_char(coalesce(failing_since, $2) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC, for more than 3 days.'
				ELSE '' END
			WHERE id = $1`, endpointID, now, r.Pause, r.PauseFailingBefore)
		return err
	})
}

// CancelDelivery marks a pending delivery cancelled.
func (s *WebhookStore) CancelDelivery(ctx context.Context, deliveryID string) error {
	_, err := s.db.Pool.Exec(ctx, `UPDATE webhook_deliveries SET state = 'cancelled', next_attempt_at = NULL
		WHERE id = $1 AND state = 'pending'`, deliveryID)
	return translate(err)
}
