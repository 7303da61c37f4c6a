package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"agentd"
)

// Webhook endpoints, their deliveries and attempts (docs/webhooks.md). The Webhooks service is
// what the CLI, /admin and the API call; the DeliverWorker (deliver.go) sends.

// Endpoint is a webhook receiver.
type Endpoint struct {
	ID          int64
	URL         string
	Events      []Type // empty: every type
	Description string
	Enabled     bool
	// PausedReason says why the endpoint does not deliver (410, or failing for 3 days).
	PausedReason string
	FailingSince *time.Time
	CreatedAt    time.Time
	// PreviousExpiresAt is when the secret replaced by the last rotation stops signing (nil: none).
	PreviousExpiresAt *time.Time
}

// State is how a list shows the endpoint: "active", "failing", "paused" or "disabled".
func (e Endpoint) State() string {
	switch {
	case !e.Enabled:
		return "disabled"
	case e.PausedReason != "":
		return "paused"
	case e.FailingSince != nil:
		return "failing"
	}
	return "active"
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// Delivery is one event (or test event) for one endpoint; its ID is the Agentd-Delivery header,
// the same on every retry and redelivery.
type Delivery struct {
	ID            string
	EndpointID    int64
	EventID       string // empty for a test event
	EventType     Type
	State         string
	Attempts      int
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	// The last attempt's outcome (zero before the first attempt).
	LastStatus    int
	LastLatency   time.Duration
	LastError     string
	LastResponse  string
	LastAttemptAt *time.Time
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	DeliveryID string
	Attempt    int
	StartedAt  time.Time
	Latency    time.Duration
	Status     int // 0 when there was no response
	Error      string
	Response   string // the first ResponseLimit bytes of the body
}

// Outcome is what an attempt decided for its delivery.
type Outcome int

// The outcomes of an attempt.
const (
	OutcomeDelivered Outcome = iota // 2xx
	OutcomeRetry                    // retried at the delivery's next attempt
	OutcomeFailed                   // no retry: 3xx, 4xx, or the attempts are spent
)

// AttemptResult is an attempt with what follows from it, recorded in one transaction.
type AttemptResult struct {
	Attempt
	Outcome       Outcome
	NextAttemptAt *time.Time // OutcomeRetry only
	// Pause, when set, pauses the endpoint with this reason (the receiver answered 410).
	Pause string
	// PauseFailingBefore pauses a failing endpoint whose failing_since is before this time.
	PauseFailingBefore time.Time
}

// Target is what the deliver worker needs to send one delivery.
type Target struct {
	Delivery Delivery
	Body     []byte // Event.Body() of the delivery's event
	Endpoint Endpoint
	Secrets  []string // the current secret first, then the previous one while it is valid
}

// NewEndpoint is what AddEndpoint stores.
type NewEndpoint struct {
	URL         string
	Events      []Type
	Description string
	Secret      string
}

// Actor is who changes webhooks, for the audit row each change commits with: an admin's user
// id from /admin, an API token's name from the API, neither from the CLI (agentd itself).
type Actor struct {
	UserID int64  // 0: not a signed-in user
	Token  string // the API token's name, or ""
}

type actorKey struct{}

// WithActor returns ctx carrying who acts; the web surfaces set it on the webhook routes.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns who acts in ctx (the zero Actor, agentd itself, when none was set).
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// WebhookStore is where endpoints and deliveries live (postgres.WebhookStore). Every change
// commits with its audit row (webhook.add, .remove, .rotate, .resume, .test, .redeliver) by actor.
type WebhookStore interface {
	AddEndpoint(ctx context.Context, actor Actor, e NewEndpoint) (Endpoint, error)
	Endpoints(ctx context.Context) ([]Endpoint, error)
	Endpoint(ctx context.Context, id int64) (Endpoint, error)
	RemoveEndpoint(ctx context.Context, actor Actor, id int64) error
	// RotateSecret makes secret current; the old one stays valid until previousUntil.
	RotateSecret(ctx context.Context, actor Actor, id int64, secret string, previousUntil time.Time) (Endpoint, error)
	// ResumeEndpoint clears a paused endpoint's pause and failing_since (ECONFLICT
	// webhook_not_paused when it is not paused).
	ResumeEndpoint(ctx context.Context, actor Actor, id int64) (Endpoint, error)
	// CreateTestDelivery stores a ping delivery with its deliver job.
	CreateTestDelivery(ctx context.Context, actor Actor, endpointID int64, ev Event) (Delivery, error)
	// Redeliver puts a delivery back to pending with a new deliver job (same delivery id).
	Redeliver(ctx context.Context, actor Actor, deliveryID string) (Delivery, error)
	Deliveries(ctx context.Context, endpointID int64, limit int) ([]Delivery, error)
	Delivery(ctx context.Context, deliveryID string) (Delivery, error)
	Attempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// CreateDeliveries creates the deliveries (and deliver jobs) of one transaction's events.
	CreateDeliveries(ctx context.Context, tx uint64) (int, error)
	// Target reads a delivery with its endpoint and the secrets valid at now.
	Target(ctx context.Context, deliveryID string, now time.Time) (Target, error)
	// RecordAttempt writes the attempt (numbered after the delivery's attempts) and its outcome.
	RecordAttempt(ctx context.Context, r AttemptResult, now time.Time) error
	// CancelDelivery marks a pending delivery cancelled (its endpoint is paused or disabled).
	CancelDelivery(ctx context.Context, deliveryID string) error
}

// WebhookConfig is the tunable part of the webhooks (docs/configuration.md).
type WebhookConfig struct {
	Timeout        time.Duration // one attempt's HTTP timeout (AGENTD_WEBHOOK_TIMEOUT)
	RotationWindow time.Duration // how long a rotated-out secret still signs (AGENTD_WEBHOOK_ROTATION_WINDOW)
	AllowPrivate   bool          // allow receivers on loopback and private ranges (AGENTD_WEBHOOK_ALLOW_PRIVATE=1)
	BackoffBase    time.Duration // the first retry's delay, before jitter
	BackoffCap     time.Duration // the longest delay between two attempts, before jitter
	FailingPause   time.Duration // an endpoint failing this long is paused
}

// DefaultWebhookConfig is used where a field is zero.
var DefaultWebhookConfig = WebhookConfig{
	Timeout:        10 * time.Second,
	RotationWindow: 24 * time.Hour,
	BackoffBase:    15 * time.Second,
	BackoffCap:     6 * time.Hour,
	FailingPause:   72 * time.Hour,
}

// withDefaults fills the zero fields of c.
func (c WebhookConfig) withDefaults() WebhookConfig {
	d := DefaultWebhookConfig
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.RotationWindow <= 0 {
		c.RotationWindow = d.RotationWindow
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = d.BackoffBase
	}
	if c.BackoffCap <= 0 {
		c.BackoffCap = d.BackoffCap
	}
	if c.FailingPause <= 0 {
		c.FailingPause = d.FailingPause
	}
	return c
}

// DeliverMaxAttempts is the attempts of one delivery: with the default backoff (15 s doubling
// to a 6 h cap, plus up to half again of jitter) the 14 retries span at least 26.5 h.
const DeliverMaxAttempts = 15

// Backoff is the delay before retry n (n = 1 after the first failed attempt): base·2^(n-1)
// capped at max, plus a jitter of up to half of that, derived from key (the delivery id) so the
// delay recorded on the delivery is the one River schedules.
func Backoff(base, max time.Duration, n int, key string) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	h := sha256.Sum256([]byte(key + "/" + strconv.Itoa(n)))
	frac := float64(uint16(h[0])<<8|uint16(h[1])) / 65536
	return d + time.Duration(frac*float64(d/2))
}

// Sign returns the Agentd-Signature header of body at t: one v1 per secret.
func Sign(t time.Time, body []byte, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		m.Write([]byte(ts + "."))
		m.Write(body)
		b.WriteString(",v1=" + hex.EncodeToString(m.Sum(nil)))
	}
	return b.String()
}

// SecretPrefix starts every webhook signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a new random signing secret.
func NewSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return SecretPrefix + hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func errBadURL(format string, args ...any) error {
	return agentd.Errorf(agentd.EINVALID, "invalid_webhook_url", format, args...)
}

// refusedAddr reports why ip may not receive webhooks, or "" when it may.
func refusedAddr(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsPrivate():
		return "private"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	case !ip.IsValid():
		return "invalid"
	}
	// Carrier-grade NAT (100.64.0.0/10) is private in all but name.
	if ip.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
		return "private"
	}
	return ""
}

// CheckURL validates a receiver URL: http or https with a host; unless allowPrivate, every
// address the host resolves to must be public (the dialer checks again at connect time).
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errBadURL("A webhook URL must be an absolute http or https URL.")
	}
	if u.User != nil {
		return errBadURL("A webhook URL must not carry a user name or password.")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return errBadURL("The webhook host %q does not resolve.", host)
		}
		addrs = ips
	}
	for _, ip := range addrs {
		if why := refusedAddr(ip); why != "" {
			return errBadURL("The webhook host %q is a %s address (%s); set AGENTD_WEBHOOK_ALLOW_PRIVATE=1 to allow it.", host, why, ip)
		}
	}
	return nil
}

// dialControl refuses, at connect time, the addresses CheckURL refuses, so a name that resolved
// to a public address when the endpoint was added cannot be rebound to an internal one.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: unexpected address %q", address)
	}
	if why := refusedAddr(ap.Addr()); why != "" {
		return fmt.Errorf("webhook: refusing to connect to %s address %s", why, ap.Addr())
	}
	return nil
}

// Webhooks is the service behind the webhook CLI, /admin and API.
type Webhooks struct {
	store WebhookStore
	cfg   WebhookConfig
	now   func() time.Time
}

// WebhooksDeps is what NewWebhooks needs; Now defaults to time.Now.
type WebhooksDeps struct {
	Store  WebhookStore
	Config WebhookConfig
	Now    func() time.Time
}

// NewWebhooks returns the webhook service.
func NewWebhooks(d WebhooksDeps) *Webhooks {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Webhooks{store: d.Store, cfg: d.Config.withDefaults(), now: d.Now}
}

// Add validates and stores an endpoint; the returned secret is shown once.
func (w *Webhooks) Add(ctx context.Context, rawURL string, events []Type, description string) (Endpoint, string, error) {
	rawURL = strings.TrimSpace(rawURL)
	if len(rawURL) > 2048 {
		return Endpoint{}, "", errBadURL("A webhook URL must be at most 2048 characters.")
	}
	if err := CheckURL(ctx, rawURL, w.cfg.AllowPrivate); err != nil {
		return Endpoint{}, "", err
	}
	for _, t := range events {
		if !Known(t) {
			return Endpoint{}, "", agentd.Errorf(agentd.EINVALID, "invalid_event_type", "Unknown event type %q.", t)
		}
	}
	if len(description) > 200 {
		return Endpoint{}, "", agentd.Errorf(agentd.EINVALID, "invalid_argument", "A description must be at most 200 characters.")
	}
	secret := NewSecret()
	e, err := w.store.AddEndpoint(ctx, ActorOf(ctx), NewEndpoint{URL: rawURL, Events: events, Description: strings.TrimSpace(description), Secret: secret})
	return e, secret, err
}

// List returns every endpoint.
func (w *Webhooks) List(ctx context.Context) ([]Endpoint, error) { return w.store.Endpoints(ctx) }

// Get returns one endpoint.
func (w *Webhooks) Get(ctx context.Context, id int64) (Endpoint, error) {
	return w.store.Endpoint(ctx, id)
}

// Remove deletes an endpoint with its deliveries.
func (w *Webhooks) Remove(ctx context.Context, id int64) error {
	return w.store.RemoveEndpoint(ctx, ActorOf(ctx), id)
}

// Rotate gives the endpoint a new secret (returned, shown once); the old one keeps signing for
// the rotation window, so a delivery carries a v1 for each.
func (w *Webhooks) Rotate(ctx context.Context, id int64) (Endpoint, string, error) {
	secret := NewSecret()
	e, err := w.store.RotateSecret(ctx, ActorOf(ctx), id, secret, w.now().Add(w.cfg.RotationWindow))
	return e, secret, err
}

// SendTest queues a ping delivery to the endpoint.
func (w *Webhooks) SendTest(ctx context.Context, id int64) (Delivery, error) {
	data, _ := json.Marshal(map[string]any{"endpoint_id": id, "message": "Test event from agentd."})
	return w.store.CreateTestDelivery(ctx, ActorOf(ctx), id, Event{ID: newUUID(), Type: Ping, CreatedAt: w.now().UTC().Truncate(time.Microsecond), Data: data})
}

// Redeliver sends a delivery again, with the same delivery id.
func (w *Webhooks) Redeliver(ctx context.Context, deliveryID string) (Delivery, error) {
	return w.store.Redeliver(ctx, ActorOf(ctx), strings.TrimSpace(deliveryID))
}

// Resume delivers again to an endpoint paused by a 410 or by failing for 3 days: its pause and
// failing_since are cleared, so the events after this are delivered. Deliveries cancelled while
// it was paused stay cancelled; Redeliver sends one again.
func (w *Webhooks) Resume(ctx context.Context, id int64) (Endpoint, error) {
	return w.store.ResumeEndpoint(ctx, ActorOf(ctx), id)
}

// Deliveries returns an endpoint's latest deliveries, newest first.
func (w *Webhooks) Deliveries(ctx context.Context, endpointID int64, limit int) ([]Delivery, error) {
	if _, err := w.store.Endpoint(ctx, endpointID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	return w.store.Deliveries(ctx, endpointID, limit)
}

// Delivery returns one delivery with its last attempt's outcome.
func (w *Webhooks) Delivery(ctx context.Context, deliveryID string) (Delivery, error) {
	return w.store.Delivery(ctx, strings.TrimSpace(deliveryID))
}

// Attempts returns a delivery's attempts in order.
func (w *Webhooks) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	return w.store.Attempts(ctx, strings.TrimSpace(deliveryID))
}
