package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"agentd/notify"
	"agentd/postgres"
)

// received is one request a test receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

func (r received) delivery() string { return r.Header.Get("Agentd-Delivery") }

// event decodes the body {id, type, created_at, data}.
func (r received) event(t testing.TB) (id, typ string, data map[string]any) {
	t.Helper()
	var b struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("delivery body %q: %v", r.Body, err)
	}
	return b.ID, b.Type, b.Data
}

// receiver is a real HTTP server on loopback that records every request and answers with
// respond (200 when nil).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(w http.ResponseWriter, r *http.Request, n int) // n counts requests from 1
}

func newReceiver(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int)) *receiver {
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{Header: r.Header.Clone(), Body: body})
		n, respond := len(rc.got), rc.respond
		rc.mu.Unlock()
		if respond != nil {
			respond(w, r, n)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setRespond(f func(w http.ResponseWriter, r *http.Request, n int)) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// ofType returns the requests whose Agentd-Event is typ.
func (rc *receiver) ofType(typ string) []received {
	var out []received
	for _, r := range rc.requests() {
		if r.Header.Get("Agentd-Event") == typ {
			out = append(out, r)
		}
	}
	return out
}

// verifySignature checks an Agentd-Signature header as a receiver would, independently of
// notify.Sign: it returns how many v1 values matched secret.
func verifySignature(t testing.TB, header string, body []byte, secret string) int {
	t.Helper()
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Fatalf("signature %q: bad or stale t", header)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := hex.EncodeToString(mac.Sum(nil))
	n := 0
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			n++
		}
	}
	return n
}

// hookConfig lets a test node send to loopback receivers, retry fast and time out soon.
func hookConfig(c *Config) {
	c.Webhooks.AllowPrivate = true
	c.Webhooks.BackoffBase = 5 * time.Millisecond
	c.Webhooks.BackoffCap = 40 * time.Millisecond
	c.Webhooks.Timeout = 2 * time.Second
	c.Router.RouteInterval = 20 * time.Millisecond
}

func addHook(t testing.TB, m *Main, url string, events ...notify.Type) (notify.Endpoint, string) {
	t.Helper()
	e, secret, err := m.Webhooks.Add(context.Background(), url, events, "test")
	if err != nil {
		t.Fatal(err)
	}
	return e, secret
}

// waitDelivery waits until delivery id is in state and returns it.
func waitDelivery(t testing.TB, m *Main, endpointID int64, id, state string) notify.Delivery {
	t.Helper()
	var d notify.Delivery
	waitFor(t, "delivery "+id+" "+state, func() bool {
		ds, err := m.Webhooks.Deliveries(context.Background(), endpointID, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ds {
			if x.ID == id {
				d = x
				return x.State == state
			}
		}
		return false
	})
	return d
}

// jobState is the River state of the latest deliver job of a delivery.
func jobState(t testing.TB, m *Main, deliveryID string) string {
	t.Helper()
	var s string
	err := m.DB.Pool.QueryRow(context.Background(), `SELECT state FROM river_job WHERE kind = 'notify.deliver'
		AND args->>'delivery_id' = $1 ORDER BY id DESC LIMIT 1`, deliveryID).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWebhookChatEvents: message.created, userdata.updated with CoBrowseSessionId and
// cobrowse.requested from a real chat reach a loopback receiver, signed with the endpoint's
// secret; after a rotation each delivery carries a v1 for both secrets, and both verify.
func TestWebhookChatEvents(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	rc := newReceiver(t, nil)
	e, secret := addHook(t, m, rc.srv.URL+"/hook", notify.MessageCreated, notify.UserDataUpdated, notify.CoBrowseRequested)
	u := newAgent(t, m, "wanda", 2)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	mustOK(t, c.do("send_message", map[string]any{"text": "hello <b>webhooks</b>"}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-42"}}))
	waitFor(t, "the three deliveries", func() bool {
		return len(rc.ofType("message.created")) >= 1 && len(rc.ofType("cobrowse.requested")) == 1 &&
			len(rc.ofType("userdata.updated")) >= 1
	})
	for _, r := range rc.requests() {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != notify.UserAgent || r.delivery() == "" {
			t.Fatalf("headers %v", r.Header)
		}
		if n := verifySignature(t, r.Header.Get("Agentd-Signature"), r.Body, secret); n != 1 {
			t.Fatalf("%d v1 values verify with the secret in %q", n, r.Header.Get("Agentd-Signature"))
		}
		_, typ, data := r.event(t)
		if typ != r.Header.Get("Agentd-Event") || data["interaction_id"] != id || data["service"] != "default" {
			t.Fatalf("event %s: data %v (interaction %s)", typ, data, id)
		}
	}
	found := false
	for _, r := range rc.ofType("message.created") {
		if _, _, data := r.event(t); data["text"] == "hello <b>webhooks</b>" {
			found = true
		}
	}
	if !found {
		t.Fatal("no message.created carries the customer's message")
	}
	found = false
	for _, r := range rc.ofType("userdata.updated") {
		if _, _, data := r.event(t); data["key"] == "CoBrowseSessionId" && data["value"] == "CB-42" {
			found = true
		}
	}
	if !found {
		t.Fatal("no userdata.updated carries CoBrowseSessionId")
	}
	_, _, data := rc.ofType("cobrowse.requested")[0].event(t)
	if agent, _ := data["agent"].(map[string]any); data["session_id"] != "CB-42" || agent["username"] != "wanda" {
		t.Fatalf("cobrowse.requested data %v", data)
	}

	// Rotation: the next delivery is signed with the new and the previous secret.
	_, secret2, err := m.Webhooks.Rotate(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := len(rc.ofType("message.created"))
	mustOK(t, c.do("send_message", map[string]any{"text": "after rotation"}))
	waitFor(t, "a delivery after the rotation", func() bool { return len(rc.ofType("message.created")) > before })
	r := rc.ofType("message.created")[before]
	sig := r.Header.Get("Agentd-Signature")
	if strings.Count(sig, "v1=") != 2 || verifySignature(t, sig, r.Body, secret) != 1 || verifySignature(t, sig, r.Body, secret2) != 1 {
		t.Fatalf("after rotation the signature %q does not verify with both secrets", sig)
	}
	// Once the previous secret expires, only the new one signs.
	if _, err := m.DB.Pool.Exec(context.Background(), `UPDATE webhook_endpoints SET previous_expires_at = now() - interval '1 second' WHERE id = $1`, e.ID); err != nil {
		t.Fatal(err)
	}
	before = len(rc.ofType("message.created"))
	mustOK(t, c.do("send_message", map[string]any{"text": "after expiry"}))
	waitFor(t, "a delivery after the expiry", func() bool { return len(rc.ofType("message.created")) > before })
	r = rc.ofType("message.created")[before]
	if sig := r.Header.Get("Agentd-Signature"); strings.Count(sig, "v1=") != 1 || verifySignature(t, sig, r.Body, secret2) != 1 {
		t.Fatalf("after expiry the signature %q", sig)
	}
}

// TestWebhookFailures: how a delivery fares against receivers that fail in each way.
func TestWebhookFailures(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig, func(c *Config) { c.Webhooks.Timeout = 300 * time.Millisecond })
	ctx := context.Background()
	send := func(url string) (notify.Endpoint, notify.Delivery) {
		t.Helper()
		e, _ := addHook(t, m, url)
		d, err := m.Webhooks.SendTest(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		return e, d
	}
	attempts := func(id string) []notify.Attempt {
		t.Helper()
		as, err := m.Webhooks.Attempts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	waitAttempts := func(id string, n int) []notify.Attempt {
		t.Helper()
		var as []notify.Attempt
		waitFor(t, fmt.Sprintf("%d attempts of %s", n, id), func() bool { as = attempts(id); return len(as) >= n })
		return as
	}

	t.Run("Down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close() // nothing listens there now: connection refused
		_, d := send("http://" + addr + "/")
		as := waitAttempts(d.ID, 3)
		if as[0].Status != 0 || !strings.Contains(as[0].Error, "refused") {
			t.Fatalf("attempt %+v", as[0])
		}
	})
	t.Run("Slow", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n < 3 {
				<-r.Context().Done() // answer only after agentd gave up
				return
			}
		})
		e, d := send(rc.srv.URL)
		d = waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
		as := attempts(d.ID)
		if len(as) != 3 || !strings.Contains(as[0].Error, "timeout") || as[0].Latency < 300*time.Millisecond || as[2].Status != 200 {
			t.Fatalf("attempts %+v", as)
		}
		for _, r := range rc.requests() {
			if r.delivery() != d.ID {
				t.Fatalf("retry carried delivery %q, want %q", r.delivery(), d.ID)
			}
		}
	})
	t.Run("ServerError", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				http.Error(w, "boom", http.StatusInternalServerError)
			}
		})
		e, d := send(rc.srv.URL)
		waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
		as := attempts(d.ID)
		if len(as) != 2 || as[0].Status != 500 || as[0].Response != "boom\n" || as[1].Status != 200 {
			t.Fatalf("attempts %+v", as)
		}
		// The success cleared the failure.
		if e, _ = m.Webhooks.Get(ctx, e.ID); e.FailingSince != nil || e.State() != "active" {
			t.Fatalf("after a success the endpoint is %s (failing since %v)", e.State(), e.FailingSince)
		}
	})
	t.Run("TooManyRequests", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		e, d := send(rc.srv.URL)
		waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
		if as := attempts(d.ID); len(as) != 2 || as[0].Status != 429 {
			t.Fatalf("attempts %+v", as)
		}
	})
	t.Run("BadRequest", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusBadRequest) })
		e, d := send(rc.srv.URL)
		waitDelivery(t, m, e.ID, d.ID, notify.DeliveryFailed)
		waitFor(t, "the job cancelled", func() bool { return jobState(t, m, d.ID) == "cancelled" })
		if as := attempts(d.ID); len(as) != 1 || as[0].Status != 400 || len(rc.requests()) != 1 {
			t.Fatalf("attempts %+v, %d requests", as, len(rc.requests()))
		}
		if e, _ = m.Webhooks.Get(ctx, e.ID); e.State() != "failing" || e.PausedReason != "" {
			t.Fatalf("after a 400 the endpoint is %s (%q)", e.State(), e.PausedReason)
		}
	})
	t.Run("Gone", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusGone) })
		e, d := send(rc.srv.URL)
		waitDelivery(t, m, e.ID, d.ID, notify.DeliveryFailed)
		e, _ = m.Webhooks.Get(ctx, e.ID)
		if e.State() != "paused" || !strings.Contains(e.PausedReason, "410") {
			t.Fatalf("after a 410 the endpoint is %s (%q)", e.State(), e.PausedReason)
		}
		// A paused endpoint gets no more deliveries: a test event is cancelled unsent.
		d2, err := m.Webhooks.SendTest(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		waitDelivery(t, m, e.ID, d2.ID, notify.DeliveryCancelled)
		if n := len(rc.requests()); n != 1 {
			t.Fatalf("the paused endpoint got %d requests", n)
		}
	})
	t.Run("RedirectLoop", func(t *testing.T) {
		var rc *receiver
		rc = newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Redirect(w, r, rc.srv.URL+r.URL.Path, http.StatusFound)
		})
		e, d := send(rc.srv.URL + "/loop")
		waitDelivery(t, m, e.ID, d.ID, notify.DeliveryFailed)
		waitFor(t, "the job cancelled", func() bool { return jobState(t, m, d.ID) == "cancelled" })
		as := attempts(d.ID)
		if len(as) != 1 || as[0].Status != 302 || !strings.Contains(as[0].Error, "not followed") || len(rc.requests()) != 1 {
			t.Fatalf("attempts %+v, %d requests", as, len(rc.requests()))
		}
	})
	t.Run("HugeResponse", func(t *testing.T) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
			// Up to 1 GiB, until agentd stops reading and closes the connection.
			for range 1 << 14 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		e, d := send(rc.srv.URL)
		d = waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
		if len(d.LastResponse) != notify.ResponseLimit || d.LastStatus != 200 {
			t.Fatalf("snippet of %d bytes, status %d", len(d.LastResponse), d.LastStatus)
		}
	})
}

// TestWebhookFailingPause: an endpoint whose deliveries fail for more than 3 days (the
// worker's clock moved ahead) is paused and says why.
func TestWebhookFailingPause(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	m := startNodeAt(t, newDB(t), clock.Now, hookConfig)
	ctx := context.Background()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	e, _ := addHook(t, m, rc.srv.URL)
	d, err := m.Webhooks.SendTest(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed attempt", func() bool {
		as, _ := m.Webhooks.Attempts(ctx, d.ID)
		return len(as) >= 1
	})
	e, _ = m.Webhooks.Get(ctx, e.ID)
	if e.State() != "failing" || e.FailingSince == nil {
		t.Fatalf("after a 503 the endpoint is %s", e.State())
	}
	clock.Advance(72*time.Hour + time.Minute)
	waitFor(t, "the endpoint paused", func() bool {
		e, _ = m.Webhooks.Get(ctx, e.ID)
		return e.State() == "paused"
	})
	if !strings.Contains(e.PausedReason, "more than 3 days") {
		t.Fatalf("paused reason %q", e.PausedReason)
	}
	waitDelivery(t, m, e.ID, d.ID, notify.DeliveryCancelled)
}

// TestWebhookRestartLosesNothing: deliveries pending when agentd stops are all delivered by the
// next node, each under the one delivery id it had (counted by Agentd-Delivery).
func TestWebhookRestartLosesNothing(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	m := startNode(t, db, hookConfig)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	e, _ := addHook(t, m, rc.srv.URL, notify.MessageCreated)
	u := newAgent(t, m, "rita", 2)
	ready(t, m, u)
	c, _ := acceptedChat(t, m, u, nil)
	const n = 10
	for i := range n {
		mustOK(t, c.do("send_message", map[string]any{"text": fmt.Sprint("message ", i)}))
	}
	waitFor(t, "the deliveries created", func() bool {
		ds, _ := m.Webhooks.Deliveries(context.Background(), e.ID, 100)
		return len(ds) == n
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	rc.setRespond(nil) // the receiver is back
	m2 := startNode(t, db, hookConfig)
	waitFor(t, "every delivery delivered", func() bool {
		ds, _ := m2.Webhooks.Deliveries(context.Background(), e.ID, 100)
		for _, d := range ds {
			if d.State != notify.DeliveryDelivered {
				return false
			}
		}
		return len(ds) == n
	})
	checkOncePerEvent(t, rc, n)
}

// checkOncePerEvent checks that the receiver's successful requests (the last of each delivery)
// are n events, each under one delivery id only.
func checkOncePerEvent(t *testing.T, rc *receiver, n int) {
	t.Helper()
	deliveryOf := map[string]string{} // event id -> delivery id
	for _, r := range rc.requests() {
		ev, _, _ := r.event(t)
		if d, ok := deliveryOf[ev]; ok && d != r.delivery() {
			t.Fatalf("event %s sent under two delivery ids, %s and %s", ev, d, r.delivery())
		}
		deliveryOf[ev] = r.delivery()
	}
	if len(deliveryOf) != n {
		t.Fatalf("%d events delivered, want %d", len(deliveryOf), n)
	}
}

// TestWebhookTwoNodes: two nodes on one database deliver each delivery exactly once.
func TestWebhookTwoNodes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, hookConfig)
	b := startNode(t, db, hookConfig)
	rc := newReceiver(t, nil)
	e, _ := addHook(t, a, rc.srv.URL, notify.MessageCreated)
	u := newAgent(t, a, "nina", 2)
	ready(t, a, u)
	c, _ := acceptedChat(t, b, u, nil) // the customer is on b, the agent's changes on a
	const n = 20
	for i := range n {
		mustOK(t, c.do("send_message", map[string]any{"text": fmt.Sprint("customer ", i)}))
	}
	waitFor(t, "every delivery delivered", func() bool {
		ds, _ := b.Webhooks.Deliveries(context.Background(), e.ID, 100)
		done := 0
		for _, d := range ds {
			if d.State == notify.DeliveryDelivered {
				done++
			}
		}
		return done == n
	})
	seen := map[string]int{}
	for _, r := range rc.requests() {
		seen[r.delivery()]++
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("delivery %s sent %d times", id, k)
		}
	}
	checkOncePerEvent(t, rc, n)
}

// TestWebhookSSRF: without AGENTD_WEBHOOK_ALLOW_PRIVATE, receivers on internal addresses are
// refused when added, and an endpoint whose name later points at one (DNS rebinding, here
// stored directly) is refused at connect time: the loopback receiver gets nothing.
func TestWebhookSSRF(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) {
		c.Webhooks.BackoffBase = 5 * time.Millisecond
		c.Webhooks.BackoffCap = 20 * time.Millisecond
	})
	ctx := context.Background()
	for _, url := range []string{
		"http://127.0.0.1:9/", "http://localhost/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.0.1/",
		"http://172.16.0.1/", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/", "http://[fe80::1]/",
		"http://224.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/",
		"ftp://example.com/", "javascript:alert(1)", "example.com/hook", "http://user:pw@example.com/", "",
	} {
		if _, _, err := m.Webhooks.Add(ctx, url, nil, ""); err == nil || !strings.Contains(err.Error(), "invalid_webhook_url") {
			t.Errorf("Add(%q): want invalid_webhook_url, got %v", url, err)
		}
	}
	if _, _, err := m.Webhooks.Add(ctx, "https://93.184.215.14/hook", []notify.Type{"no.such"}, ""); err == nil || !strings.Contains(err.Error(), "invalid_event_type") {
		t.Errorf("unknown event type: got %v", err)
	}
	rc := newReceiver(t, nil)
	e, err := postgres.NewWebhookStore(m.DB).AddEndpoint(ctx, notify.Actor{}, notify.NewEndpoint{URL: rc.srv.URL, Secret: notify.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Webhooks.SendTest(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var as []notify.Attempt
	waitFor(t, "refused attempts", func() bool { as, _ = m.Webhooks.Attempts(ctx, d.ID); return len(as) >= 2 })
	if !strings.Contains(as[0].Error, "refusing to connect to loopback") || len(rc.requests()) != 0 {
		t.Fatalf("attempt %+v; receiver got %d requests", as[0], len(rc.requests()))
	}
}

// TestWebhookDispatchOnce: an event goes to the enabled, un-paused endpoints whose filter takes
// its type, and a dispatch run again for the same transaction creates nothing twice.
func TestWebhookDispatchOnce(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	msgs, _ := addHook(t, m, rc.srv.URL+"/messages", notify.MessageCreated)
	all, _ := addHook(t, m, rc.srv.URL+"/all")
	other, _ := addHook(t, m, rc.srv.URL+"/userdata", notify.UserDataDeleted)
	paused, _ := addHook(t, m, rc.srv.URL+"/paused")
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE webhook_endpoints SET paused_reason = 'test' WHERE id = $1`, paused.ID); err != nil {
		t.Fatal(err)
	}
	u := newAgent(t, m, "dora", 2)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	mustOK(t, c.do("send_message", map[string]any{"text": "once"}))
	var tx uint64
	waitFor(t, "the message's delivery", func() bool {
		err := m.DB.Pool.QueryRow(ctx, `SELECT e.tx_id::text::bigint FROM webhook_deliveries d JOIN integration_events e ON e.event_id = d.event_id
			WHERE d.endpoint_id = $1 AND e.interaction_id = $2`, msgs.ID, id).Scan(&tx)
		return err == nil
	})
	n, err := postgres.NewWebhookStore(m.DB).CreateDeliveries(ctx, tx)
	if err != nil || n != 0 {
		t.Fatalf("a second dispatch created %d deliveries (%v)", n, err)
	}
	count := func(e notify.Endpoint) int {
		var k int
		if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries d JOIN integration_events e ON e.event_id = d.event_id
			WHERE d.endpoint_id = $1 AND e.tx_id = $2::text::xid8`, e.ID, fmt.Sprint(tx)).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if count(msgs) != 1 || count(all) < 1 || count(other) != 0 || count(paused) != 0 {
		t.Fatalf("deliveries of the message's transaction: messages %d, all %d, userdata.deleted %d, paused %d",
			count(msgs), count(all), count(other), count(paused))
	}
}
