package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"agentd"
)

// ResponseLimit is how much of a receiver's response body is read and kept.
const ResponseLimit = 4 << 10

// UserAgent is the User-Agent of every delivery.
const UserAgent = "agentd-webhooks/1"

// DispatchWorker fans one transaction's events out to the matching endpoints.
type DispatchWorker struct {
	river.WorkerDefaults[DispatchArgs]
	Store WebhookStore
}

// Work creates the transaction's deliveries; it is idempotent (one delivery per event and
// endpoint), so a retried dispatch creates only what is missing.
func (w *DispatchWorker) Work(ctx context.Context, job *river.Job[DispatchArgs]) error {
	_, err := w.Store.CreateDeliveries(ctx, job.Args.Tx)
	return err
}

// DeliverWorker sends one delivery per job run and records the attempt.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	store  WebhookStore
	cfg    WebhookConfig
	now    func() time.Time
	client *http.Client
	logger *slog.Logger
}

// DeliverDeps is what NewDeliverWorker needs; Now defaults to time.Now.
type DeliverDeps struct {
	Store  WebhookStore
	Config WebhookConfig
	Now    func() time.Time
	Logger *slog.Logger
}

// NewDeliverWorker returns the deliver worker. Its HTTP client follows no redirect and, unless
// AllowPrivate, refuses at connect time every address CheckURL refuses.
func NewDeliverWorker(d DeliverDeps) *DeliverWorker {
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg := d.Config.withDefaults()
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	if !cfg.AllowPrivate {
		dialer.Control = dialControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	client := &http.Client{
		Transport:     transport,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &DeliverWorker{store: d.Store, cfg: cfg, now: d.Now, client: client, logger: d.Logger}
}

// Timeout bounds a job run: the request's timeout plus time to record it.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.cfg.Timeout + 30*time.Second
}

// NextRetry is the backoff of docs/webhooks.md; Work records the same time on the delivery.
// It is on River's clock (the wall clock), not the worker's now, which only dates attempts and
// failures.
func (w *DeliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(Backoff(w.cfg.BackoffBase, w.cfg.BackoffCap, job.Attempt, job.Args.DeliveryID))
}

// Work sends the delivery once. A retryable failure returns an error (River retries at
// NextRetry); a final one cancels the job.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	now := w.now()
	t, err := w.store.Target(ctx, job.Args.DeliveryID, now)
	if agentd.ErrorClass(err) == agentd.ENOTFOUND {
		return river.JobCancel(err) // the endpoint was removed with its deliveries
	}
	if err != nil {
		return err
	}
	if t.Delivery.State != DeliveryPending {
		return nil // delivered or given up already (a stale job)
	}
	if !t.Endpoint.Enabled || t.Endpoint.PausedReason != "" {
		if err := w.store.CancelDelivery(ctx, t.Delivery.ID); err != nil {
			return err
		}
		return river.JobCancel(fmt.Errorf("endpoint %d is paused: %s", t.Endpoint.ID, t.Endpoint.PausedReason))
	}

	a, retry := w.send(ctx, t, now)
	res := AttemptResult{Attempt: a, PauseFailingBefore: now.Add(-w.cfg.FailingPause)}
	switch {
	case a.Status >= 200 && a.Status < 300:
		res.Outcome = OutcomeDelivered
	case retry && job.Attempt < job.MaxAttempts:
		res.Outcome = OutcomeRetry
		next := w.NextRetry(job)
		res.NextAttemptAt = &next
	default:
		res.Outcome = OutcomeFailed
	}
	if a.Status == http.StatusGone {
		res.Pause = "The receiver answered 410 Gone on " + now.UTC().Format(time.RFC3339) + "."
	}
	if err := w.store.RecordAttempt(ctx, res, now); err != nil {
		return err
	}
	switch res.Outcome {
	case OutcomeDelivered:
		return nil
	case OutcomeRetry:
		return fmt.Errorf("delivery %s attempt %d: %s", t.Delivery.ID, job.Attempt, a.describe())
	}
	return river.JobCancel(fmt.Errorf("delivery %s failed: %s", t.Delivery.ID, a.describe()))
}

func (a Attempt) describe() string {
	if a.Error != "" {
		return a.Error
	}
	return "HTTP " + strconv.Itoa(a.Status)
}

// send makes one request; retry says whether its failure is worth retrying.
func (w *DeliverWorker) send(ctx context.Context, t Target, now time.Time) (Attempt, bool) {
	a := Attempt{DeliveryID: t.Delivery.ID, StartedAt: now}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Endpoint.URL, bytes.NewReader(t.Body))
	if err != nil {
		a.Error = "invalid request: " + err.Error()
		return a, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Agentd-Event", string(t.Delivery.EventType))
	req.Header.Set("Agentd-Delivery", t.Delivery.ID)
	req.Header.Set("Agentd-Signature", Sign(now, t.Body, t.Secrets...))
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		a.Error = attemptError(err)
		return a, true // timeouts, refused and reset connections, DNS: all worth retrying
	}
	snippet, rerr := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit))
	_ = resp.Body.Close() // the rest of a large body is not read
	a.Latency = time.Since(start)
	a.Status = resp.StatusCode
	a.Response = cleanSnippet(snippet)
	switch {
	case a.Status >= 200 && a.Status < 300:
		if rerr != nil {
			a.Response += " [body cut short: " + rerr.Error() + "]"
		}
		return a, false
	case a.Status >= 300 && a.Status < 400:
		a.Error = "redirect to " + resp.Header.Get("Location") + " not followed"
		return a, false
	case a.Status == http.StatusTooManyRequests || a.Status >= 500:
		return a, true
	}
	return a, false
}

// attemptError says what went wrong without the request's method and URL.
func attemptError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

// cleanSnippet makes a response body storable and printable text.
func cleanSnippet(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}
