package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The webhook routes of the REST API (web/api/webhooks.go, docs/api.md#webhooks).

// apiHook is a webhook endpoint as the API answers it.
type apiHook struct {
	ID                      int64    `json:"id"`
	URL                     string   `json:"url"`
	Events                  []string `json:"events"`
	Description             string   `json:"description"`
	State                   string   `json:"state"`
	PausedReason            *string  `json:"paused_reason"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	Secret                  string   `json:"secret"`
}

// apiAttempt and apiDelivery are a delivery as the API answers it.
type apiAttempt struct {
	Attempt   int    `json:"attempt"`
	Status    *int   `json:"status"`
	LatencyMS int64  `json:"latency_ms"`
	Error     string `json:"error"`
	Response  string `json:"response"`
}

type apiDelivery struct {
	ID          string      `json:"id"`
	WebhookID   int64       `json:"webhook_id"`
	EventID     *string     `json:"event_id"`
	EventType   string      `json:"event_type"`
	State       string      `json:"state"`
	Attempts    int         `json:"attempts"`
	LastAttempt *apiAttempt `json:"last_attempt"`
}

// decodeAs decodes an API answer of status want into v.
func decodeAs(t testing.TB, r apiResponse, want int, v any) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("%v: %s", err, r.raw)
	}
}

// apiDeliveries reads an endpoint's delivery log through the API.
func apiDeliveries(t testing.TB, m *Main, token string, hookID int64) []apiDelivery {
	t.Helper()
	var out struct{ Deliveries []apiDelivery }
	decodeAs(t, apiCall(t, m, "GET", fmt.Sprintf("/api/v1/webhooks/%d/deliveries", hookID), token, nil), http.StatusOK, &out)
	return out.Deliveries
}

// apiDeliveryDetail reads one delivery with its attempts through the API.
func apiDeliveryDetail(t testing.TB, m *Main, token, id string) (apiDelivery, []apiAttempt) {
	t.Helper()
	var out struct {
		Delivery apiDelivery
		Attempts []apiAttempt
	}
	decodeAs(t, apiCall(t, m, "GET", "/api/v1/deliveries/"+id, token, nil), http.StatusOK, &out)
	return out.Delivery, out.Attempts
}

// TestAPIWebhooks: an endpoint added through the API on a loopback receiver answers its secret
// once; a real chat message reaches the receiver signed with that secret and shows in the
// delivery log; a test event and a redelivery (same delivery id) arrive; after a rotation a
// delivery carries a v1 for each secret; a removed endpoint is gone with its deliveries.
func TestAPIWebhooks(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t, hookConfig)
	m := w.m
	token := apiToken(t, m, "hooks", "webhooks", "")
	rc := newReceiver(t, nil)

	var hook apiHook
	decodeAs(t, apiCall(t, m, "POST", "/api/v1/webhooks", token, map[string]any{
		"url": rc.srv.URL + "/hook", "events": []string{"message.created"}, "description": "CRM sync"}), http.StatusCreated, &hook)
	if !strings.HasPrefix(hook.Secret, "whsec_") || hook.ID == 0 || hook.State != "active" || hook.URL != rc.srv.URL+"/hook" ||
		len(hook.Events) != 1 || hook.Events[0] != "message.created" || hook.Description != "CRM sync" || hook.PreviousSecretExpiresAt != nil {
		t.Fatalf("created %+v", hook)
	}
	secret := hook.Secret
	hookPath := fmt.Sprintf("/api/v1/webhooks/%d", hook.ID)

	// The secret is answered once: never by a read or the list.
	for _, path := range []string{hookPath, "/api/v1/webhooks"} {
		r := apiCall(t, m, "GET", path, token, nil)
		if r.status != http.StatusOK || strings.Contains(string(r.raw), "secret\"") || strings.Contains(string(r.raw), secret) {
			t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
		}
	}
	var list struct{ Webhooks []apiHook }
	decodeAs(t, apiCall(t, m, "GET", "/api/v1/webhooks", token, nil), http.StatusOK, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != hook.ID || list.Webhooks[0].State != "active" {
		t.Fatalf("list %+v", list)
	}

	// A real chat message: delivered, signed with the secret, in the delivery log.
	mustOK(t, w.aliceCustomer.do("send_message", map[string]any{"text": "hello from the API test"}))
	waitFor(t, "the message delivered", func() bool { return len(rc.ofType("message.created")) > 0 })
	got := rc.ofType("message.created")[0]
	if n := verifySignature(t, got.Header.Get("Agentd-Signature"), got.Body, secret); n != 1 {
		t.Fatalf("%d v1 values verify with the secret the API returned: %q", n, got.Header.Get("Agentd-Signature"))
	}
	eventID, _, data := got.event(t)
	if data["text"] != "hello from the API test" || data["interaction_id"] != w.aliceChat {
		t.Fatalf("event data %v", data)
	}
	var msg apiDelivery
	waitFor(t, "the delivery delivered in the log", func() bool {
		for _, d := range apiDeliveries(t, m, token, hook.ID) {
			if d.ID == got.delivery() {
				msg = d
				return d.State == "delivered"
			}
		}
		return false
	})
	if msg.EventID == nil || *msg.EventID != eventID || msg.EventType != "message.created" || msg.WebhookID != hook.ID ||
		msg.Attempts != 1 || msg.LastAttempt == nil || msg.LastAttempt.Status == nil || *msg.LastAttempt.Status != 200 {
		t.Fatalf("delivery %+v (last %+v)", msg, msg.LastAttempt)
	}
	if _, as := apiDeliveryDetail(t, m, token, msg.ID); len(as) != 1 || as[0].Attempt != 1 || as[0].Status == nil || *as[0].Status != 200 {
		t.Fatalf("attempts %+v", as)
	}

	// Send test event: a ping delivery, 202, arrives with its delivery id.
	var ping apiDelivery
	decodeAs(t, apiCall(t, m, "POST", hookPath+"/test", token, nil), http.StatusAccepted, &ping)
	if ping.EventType != "ping" || ping.EventID != nil || ping.WebhookID != hook.ID || ping.ID == "" {
		t.Fatalf("test delivery %+v", ping)
	}
	waitFor(t, "the ping received", func() bool {
		pings := rc.ofType("ping")
		return len(pings) == 1 && pings[0].delivery() == ping.ID
	})

	// Redeliver: 202, the same delivery id arrives again; the log shows both attempts.
	var again apiDelivery
	decodeAs(t, apiCall(t, m, "POST", "/api/v1/deliveries/"+msg.ID+"/redeliver", token, nil), http.StatusAccepted, &again)
	if again.ID != msg.ID {
		t.Fatalf("redelivered %+v, want delivery %s", again, msg.ID)
	}
	waitFor(t, "the redelivery received", func() bool {
		n := 0
		for _, r := range rc.ofType("message.created") {
			if r.delivery() == msg.ID {
				n++
			}
		}
		return n == 2
	})
	waitFor(t, "the redelivery recorded", func() bool {
		d, as := apiDeliveryDetail(t, m, token, msg.ID)
		return d.State == "delivered" && d.Attempts == 2 && len(as) == 2
	})

	// Rotate: a new secret, answered once, and both secrets sign until the previous expires.
	var rotated apiHook
	decodeAs(t, apiCall(t, m, "POST", hookPath+"/rotate", token, nil), http.StatusOK, &rotated)
	if !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == secret || rotated.PreviousSecretExpiresAt == nil || rotated.ID != hook.ID {
		t.Fatalf("rotated %+v", rotated)
	}
	var read apiHook
	decodeAs(t, apiCall(t, m, "GET", hookPath, token, nil), http.StatusOK, &read)
	if read.Secret != "" || read.PreviousSecretExpiresAt == nil || *read.PreviousSecretExpiresAt != *rotated.PreviousSecretExpiresAt {
		t.Fatalf("after rotation %+v", read)
	}
	var ping2 apiDelivery
	decodeAs(t, apiCall(t, m, "POST", hookPath+"/test", token, nil), http.StatusAccepted, &ping2)
	var signed received
	waitFor(t, "the ping after rotation", func() bool {
		for _, r := range rc.ofType("ping") {
			if r.delivery() == ping2.ID {
				signed = r
				return true
			}
		}
		return false
	})
	sig := signed.Header.Get("Agentd-Signature")
	if strings.Count(sig, "v1=") != 2 || verifySignature(t, sig, signed.Body, secret) != 1 || verifySignature(t, sig, signed.Body, rotated.Secret) != 1 {
		t.Fatalf("after rotation the signature %q does not verify with both secrets", sig)
	}

	// Delete: gone, with its deliveries.
	var del struct {
		ID      int64 `json:"id"`
		Deleted bool  `json:"deleted"`
	}
	decodeAs(t, apiCall(t, m, "DELETE", hookPath, token, nil), http.StatusOK, &del)
	if del.ID != hook.ID || !del.Deleted {
		t.Fatalf("delete answered %+v", del)
	}
	wantAPIError(t, apiCall(t, m, "GET", hookPath, token, nil), http.StatusNotFound, "webhook_not_found")
	wantAPIError(t, apiCall(t, m, "DELETE", hookPath, token, nil), http.StatusNotFound, "webhook_not_found")
	wantAPIError(t, apiCall(t, m, "GET", "/api/v1/deliveries/"+msg.ID, token, nil), http.StatusNotFound, "delivery_not_found")
	decodeAs(t, apiCall(t, m, "GET", "/api/v1/webhooks", token, nil), http.StatusOK, &list)
	if len(list.Webhooks) != 0 {
		t.Fatalf("after delete the list is %+v", list)
	}
}

// TestAPIWebhooksScopes: only a global token with the webhooks scope manages webhooks. A token
// without the scope (read, or read+write) is refused 403 insufficient_scope, a token bound to a
// user 403 user_bound_token even with the scope (endpoints receive every interaction's events),
// no token 401 — on every route, and nothing is created or sent.
func TestAPIWebhooksScopes(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t, hookConfig)
	m := w.m
	rc := newReceiver(t, nil)
	e, _ := addHook(t, m, rc.srv.URL)
	d, err := m.Webhooks.SendTest(t.Context(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, m, e.ID, d.ID, "delivered")
	bound := apiToken(t, m, "alice-hooks", "read,write,events,webhooks", "alice")
	hookPath := fmt.Sprintf("/api/v1/webhooks/%d", e.ID)
	body := map[string]any{"url": rc.srv.URL + "/other"}
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/webhooks", nil},
		{"POST", "/api/v1/webhooks", body},
		{"GET", hookPath, nil},
		{"DELETE", hookPath, nil},
		{"POST", hookPath + "/rotate", nil},
		{"POST", hookPath + "/test", nil},
		{"GET", hookPath + "/deliveries", nil},
		{"GET", "/api/v1/deliveries/" + d.ID, nil},
		{"POST", "/api/v1/deliveries/" + d.ID + "/redeliver", nil},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := apiCall(t, m, rt.method, rt.path, w.readOnly, rt.body)
			wantAPIError(t, r, http.StatusForbidden, "insufficient_scope")
			if !strings.Contains(r.body.str("error", "description"), "webhooks") {
				t.Fatalf("description %q does not name the scope", r.body.str("error", "description"))
			}
			wantAPIError(t, apiCall(t, m, rt.method, rt.path, w.full, rt.body), http.StatusForbidden, "insufficient_scope")
			wantAPIError(t, apiCall(t, m, rt.method, rt.path, bound, rt.body), http.StatusForbidden, "user_bound_token")
			wantAPIError(t, apiCall(t, m, rt.method, rt.path, "", rt.body), http.StatusUnauthorized, "unauthorized")
		})
	}
	es, err := m.Webhooks.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].ID != e.ID || es[0].PreviousExpiresAt != nil {
		t.Fatalf("refused requests changed the endpoints: %+v", es)
	}
	ds, err := m.Webhooks.Deliveries(t.Context(), e.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || len(rc.requests()) != 1 {
		t.Fatalf("refused requests sent: %d deliveries, %d requests", len(ds), len(rc.requests()))
	}
}

// TestAPIWebhooksBadInput: on a node that does not allow private receivers, every bad input to
// the webhook routes gets its documented 4xx code and stores nothing: internal URLs are refused
// as SSRF (invalid_webhook_url, naming AGENTD_WEBHOOK_ALLOW_PRIVATE), and so are bad URLs,
// unknown event types, unknown fields, bad JSON, bad ids and limits; unknown ids are 404.
func TestAPIWebhooksBadInput(t *testing.T) {
	t.Parallel()
	// Over a hundred requests with one token: a rate that does not answer 429 in between.
	m := startNode(t, newDB(t), func(c *Config) { c.API.Rate, c.API.Burst = 1000, 1000 })
	token := apiToken(t, m, "hooks", "webhooks", "")
	const public = "https://93.184.215.14/hook" // a public address: accepted, never called here
	post := func(body any) apiResponse {
		t.Helper()
		return apiCall(t, m, "POST", "/api/v1/webhooks", token, body)
	}
	t.Run("ErrSSRF", func(t *testing.T) {
		for _, u := range []string{"http://127.0.0.1:9/hook", "http://localhost/", "http://[::1]/", "http://10.1.2.3/",
			"http://192.168.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/"} {
			r := post(map[string]any{"url": u})
			wantAPIError(t, r, http.StatusBadRequest, "invalid_webhook_url")
			if !strings.Contains(r.body.str("error", "description"), "AGENTD_WEBHOOK_ALLOW_PRIVATE") {
				t.Fatalf("%s: %s", u, r.raw)
			}
		}
	})
	t.Run("ErrBadURL", func(t *testing.T) {
		for _, u := range []string{"", "ftp://example.com/", "javascript:alert(1)", "example.com/hook",
			"https://user:pw@93.184.215.14/", "https://93.184.215.14/" + strings.Repeat("a", 2048)} {
			wantAPIError(t, post(map[string]any{"url": u}), http.StatusBadRequest, "invalid_webhook_url")
		}
		wantAPIError(t, post(map[string]any{"events": []string{"message.created"}}), http.StatusBadRequest, "invalid_webhook_url")
	})
	t.Run("ErrUnknownEventType", func(t *testing.T) {
		for _, ev := range []string{"no.such", "ping", ""} {
			wantAPIError(t, post(map[string]any{"url": public, "events": []string{"message.created", ev}}), http.StatusBadRequest, "invalid_event_type")
		}
	})
	t.Run("ErrUnknownField", func(t *testing.T) {
		r := post(map[string]any{"url": public, "secret": "whsec_mine"})
		wantAPIError(t, r, http.StatusBadRequest, "unknown_field")
		if !strings.Contains(r.body.str("error", "description"), "secret") {
			t.Fatalf("description %s", r.raw)
		}
	})
	t.Run("ErrBadJSON", func(t *testing.T) {
		for _, b := range []string{`{"url":`, `{"url": "` + public + `", "events": "message.created"}`, `[1]`, `{"url": 1}`, `{} {}`} {
			wantAPIError(t, post(b), http.StatusBadRequest, "invalid_json")
		}
		wantAPIError(t, apiCall(t, m, "POST", "/api/v1/webhooks", token, nil), http.StatusBadRequest, "invalid_json")
	})
	t.Run("ErrLongDescription", func(t *testing.T) {
		wantAPIError(t, post(map[string]any{"url": public, "description": strings.Repeat("d", 201)}), http.StatusBadRequest, "invalid_argument")
	})
	es, err := m.Webhooks.List(t.Context())
	if err != nil || len(es) != 0 {
		t.Fatalf("refused requests stored %+v (%v)", es, err)
	}

	var hook apiHook
	decodeAs(t, post(map[string]any{"url": public}), http.StatusCreated, &hook)
	if len(hook.Events) != 0 || hook.Events == nil {
		t.Fatalf("an endpoint for every type answers events %v (want [])", hook.Events)
	}
	t.Run("ErrBadWebhookID", func(t *testing.T) {
		for _, id := range []string{"abc", "0", "-1", "1.5", "99999999999999999999"} {
			for _, p := range []string{"", "/rotate", "/test", "/deliveries"} {
				method := "GET"
				if p == "/rotate" || p == "/test" {
					method = "POST"
				}
				wantAPIError(t, apiCall(t, m, method, "/api/v1/webhooks/"+id+p, token, nil), http.StatusBadRequest, "invalid_id")
			}
			wantAPIError(t, apiCall(t, m, "DELETE", "/api/v1/webhooks/"+id, token, nil), http.StatusBadRequest, "invalid_id")
		}
	})
	t.Run("ErrUnknownWebhook", func(t *testing.T) {
		missing := fmt.Sprintf("/api/v1/webhooks/%d", hook.ID+1000)
		for _, c := range []struct{ method, path string }{{"GET", missing}, {"DELETE", missing}, {"POST", missing + "/rotate"},
			{"POST", missing + "/test"}, {"GET", missing + "/deliveries"}} {
			wantAPIError(t, apiCall(t, m, c.method, c.path, token, nil), http.StatusNotFound, "webhook_not_found")
		}
	})
	t.Run("ErrBadLimit", func(t *testing.T) {
		for _, l := range []string{"0", "201", "x", "-5"} {
			wantAPIError(t, apiCall(t, m, "GET", fmt.Sprintf("/api/v1/webhooks/%d/deliveries?limit=%s", hook.ID, l), token, nil),
				http.StatusBadRequest, "invalid_argument")
		}
	})
	t.Run("ErrBadDeliveryID", func(t *testing.T) {
		for _, id := range []string{"abc", "1", "7d2e9c41-0b6a-4f3e-8a51-2c9d7e6f1b0"} {
			wantAPIError(t, apiCall(t, m, "GET", "/api/v1/deliveries/"+id, token, nil), http.StatusBadRequest, "invalid_id")
			wantAPIError(t, apiCall(t, m, "POST", "/api/v1/deliveries/"+id+"/redeliver", token, nil), http.StatusBadRequest, "invalid_id")
		}
	})
	t.Run("ErrUnknownDelivery", func(t *testing.T) {
		const id = "7d2e9c41-0b6a-4f3e-8a51-2c9d7e6f1b08"
		wantAPIError(t, apiCall(t, m, "GET", "/api/v1/deliveries/"+id, token, nil), http.StatusNotFound, "delivery_not_found")
		wantAPIError(t, apiCall(t, m, "POST", "/api/v1/deliveries/"+id+"/redeliver", token, nil), http.StatusNotFound, "delivery_not_found")
	})
}
