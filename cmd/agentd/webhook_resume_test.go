package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"agentd/agent"
	"agentd/notify"
)

// pausedHook adds an endpoint (for events, every type when none) whose receiver answers its
// first request 410 Gone and every later one 200, sends it a test event and waits until the 410
// has paused it. It returns the paused endpoint, the failed delivery and the receiver.
func pausedHook(t *testing.T, m *Main, events ...notify.Type) (notify.Endpoint, notify.Delivery, *receiver) {
	t.Helper()
	ctx := context.Background()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusGone)
		}
	})
	e, _ := addHook(t, m, rc.srv.URL+"/gone", events...)
	d, err := m.Webhooks.SendTest(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, m, e.ID, d.ID, notify.DeliveryFailed)
	if e, err = m.Webhooks.Get(ctx, e.ID); err != nil || e.State() != "paused" || !strings.Contains(e.PausedReason, "410") {
		t.Fatalf("after a 410 the endpoint is %s (%q, %v)", e.State(), e.PausedReason, err)
	}
	return e, d, rc
}

// messagesTo returns the texts of the message.created events rc received.
func messagesTo(t *testing.T, rc *receiver) []string {
	t.Helper()
	var out []string
	for _, r := range rc.ofType(string(notify.MessageCreated)) {
		_, _, data := r.event(t)
		s, _ := data["text"].(string)
		out = append(out, s)
	}
	return out
}

// TestWebhookResumeCLI: an endpoint paused by a 410 gets no event while paused (a message then
// is never delivered, a test event is cancelled); `agentd webhook resume` clears the pause and
// failing_since, audited as webhook.resume by agentd (no user); the next message is delivered,
// and the cancelled test event is sent by a redeliver. Resuming an active endpoint or an unknown
// one is a one-line error.
func TestWebhookResumeCLI(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	m := startNode(t, db, hookConfig)
	ctx := context.Background()
	u := newAgent(t, m, "wanda", 2)
	ready(t, m, u)
	c, _ := acceptedChat(t, m, u, nil)
	e, _, rc := pausedHook(t, m, notify.MessageCreated)

	// While paused: the message is not dispatched to it, the test event is cancelled unsent.
	mustOK(t, c.do("send_message", map[string]any{"text": "while paused"}))
	cancelled, err := m.Webhooks.SendTest(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, m, e.ID, cancelled.ID, notify.DeliveryCancelled)

	var out bytes.Buffer
	if err := runWebhook(ctx, []string{"resume", "--database-url", db, "--id", itoa(e.ID)}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "resumed webhook "+itoa(e.ID)) || !strings.Contains(got, "agentd webhook redeliver") {
		t.Fatalf("resume printed %q", got)
	}
	if e, err = m.Webhooks.Get(ctx, e.ID); err != nil || e.State() != "active" || e.PausedReason != "" || e.FailingSince != nil {
		t.Fatalf("after resume: %+v %v", e, err)
	}
	if rows := auditRows(t, m, "webhook.resume"); len(rows) != 1 || rows[0].User != "" || rows[0].Target != itoa(e.ID) ||
		!strings.Contains(rows[0].Details, "410") || strings.Contains(rows[0].Details, "token") {
		t.Fatalf("webhook.resume audit %+v", rows)
	}

	mustOK(t, c.do("send_message", map[string]any{"text": "after resume"}))
	waitFor(t, "the message after resume", func() bool { return len(messagesTo(t, rc)) >= 1 })
	if got := messagesTo(t, rc); len(got) != 1 || got[0] != "after resume" {
		t.Fatalf("messages delivered %q: want only the one after resume", got)
	}
	out.Reset()
	if err := runWebhook(ctx, []string{"redeliver", "--database-url", db, "--delivery", cancelled.ID}, &out); err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, m, e.ID, cancelled.ID, notify.DeliveryDelivered)

	for name, args := range map[string][]string{
		"ErrNoID":      {"resume"},
		"ErrUnknownID": {"resume", "--id", "999"},
		"ErrNotPaused": {"resume", "--id", itoa(e.ID)},
	} {
		err := runWebhook(ctx, append(args, "--database-url", db), &out)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want a one-line error, got %v", name, err)
		}
		if name == "ErrNotPaused" && !strings.Contains(err.Error(), "not paused") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestAPIWebhooksResume: POST /api/v1/webhooks/{id}/resume answers the endpoint active again and
// the next event (a notice) is delivered; it is audited as webhook.resume without a user but with
// the token's name. An active endpoint is 409 webhook_not_paused, an unknown one 404, a token
// bound to a user or without the webhooks scope 403, a body over 1 KiB 413: none resumes anything.
func TestAPIWebhooksResume(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t, hookConfig)
	m := w.m
	hooks := apiToken(t, m, "hooks", "webhooks", "")
	bound := apiToken(t, m, "bound-hooks", "webhooks", "alice")
	e, _, rc := pausedHook(t, m, notify.NoticeCustom)
	path := "/api/v1/webhooks/" + itoa(e.ID) + "/resume"

	for name, c := range map[string]struct {
		token string
		body  any
		code  int
		err   string
	}{
		"UserBound": {bound, nil, http.StatusForbidden, "user_bound_token"},
		"NoScope":   {w.full, nil, http.StatusForbidden, "insufficient_scope"},
		"TooLarge":  {hooks, strings.Repeat("x", 2<<10), http.StatusRequestEntityTooLarge, ""},
	} {
		r := apiCall(t, m, "POST", path, c.token, c.body)
		if r.status != c.code || (c.err != "" && !strings.Contains(string(r.raw), `"`+c.err+`"`)) {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if got, _ := m.Webhooks.Get(context.Background(), e.ID); got.State() != "paused" {
		t.Fatalf("a refused resume changed the endpoint: %s", got.State())
	}
	if r := apiCall(t, m, "POST", "/api/v1/webhooks/999/resume", hooks, nil); r.status != http.StatusNotFound || !strings.Contains(string(r.raw), "webhook_not_found") {
		t.Errorf("unknown endpoint: %d %s", r.status, r.raw)
	}

	r := apiCall(t, m, "POST", path, hooks, map[string]any{})
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), `"state":"active"`) || !strings.Contains(string(r.raw), `"paused_reason":null`) ||
		!strings.Contains(string(r.raw), `"failing_since":null`) || strings.Contains(string(r.raw), "secret\":") {
		t.Fatalf("resume: %d %s", r.status, r.raw)
	}
	if rows := auditRows(t, m, "webhook.resume"); len(rows) != 1 || rows[0].User != "" || !strings.Contains(rows[0].Details, `"token": "hooks"`) {
		t.Fatalf("webhook.resume audit %+v", rows)
	}
	n := apiCall(t, m, "POST", "/api/v1/interactions/"+w.aliceChat+"/notices", w.full, map[string]any{"to": "agent", "payload": map[string]any{"text": "after resume"}})
	if n.status/100 != 2 {
		t.Fatalf("notice: %d %s", n.status, n.raw)
	}
	waitFor(t, "the notice after resume", func() bool { return len(rc.ofType(string(notify.NoticeCustom))) == 1 })

	if r := apiCall(t, m, "POST", path, hooks, nil); r.status != http.StatusConflict || !strings.Contains(string(r.raw), "webhook_not_paused") {
		t.Fatalf("resume of an active endpoint: %d %s", r.status, r.raw)
	}
	if rows := auditRows(t, m, "webhook.resume"); len(rows) != 1 {
		t.Fatalf("refused resumes were audited: %+v", rows)
	}
}

// TestWebhookAdminResume: on /admin/webhooks in chromium a paused endpoint shows its reason and
// a Resume button; pressing it (with the session's CSRF token) resumes it, the page says so and
// is axe-clean, and a new event is delivered.
func TestWebhookAdminResume(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	ctx := context.Background()
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	active, _ := addHook(t, m, newReceiver(t, nil).srv.URL)
	e, _, rc := pausedHook(t, m)
	base := m.URL()
	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate(base+"/admin/webhooks"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), "root-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	row := `document.querySelector('#webhooks-table tr[data-id="` + itoa(e.ID) + `"]')`
	poll(t, tab, "webhooks page", `location.pathname === '/admin/webhooks' && !!`+row)
	if !eval[bool](t, tab, row+`.querySelector('.paused-reason').textContent.includes('410') && !!`+row+`.querySelector('button.resume')`+
		` && !document.querySelector('#webhooks-table tr[data-id="`+itoa(active.ID)+`"] button.resume')`) {
		t.Fatal("the paused endpoint has no reason or Resume button, or the active one has one")
	}
	checkAxe(t, tab, "webhooks page with a paused endpoint")
	eval[bool](t, tab, `window.__before = true`)
	browse(t, tab, chromedp.Click(chromedp.CSS(`#webhooks-table tr[data-id="`+itoa(e.ID)+`"] button.resume`)))
	poll(t, tab, "resumed", `!window.__before && document.getElementById('flash')?.textContent.startsWith('Endpoint resumed')`)
	if !eval[bool](t, tab, row+`.querySelector('.state').textContent.trim() === 'active' && !`+row+`.querySelector('button.resume')`) {
		t.Fatal("the endpoint is not shown active after Resume")
	}
	checkAxe(t, tab, "webhooks page after resume")
	if got, err := m.Webhooks.Get(ctx, e.ID); err != nil || got.State() != "active" {
		t.Fatalf("after Resume: %s %v", got.State(), err)
	}
	d, err := m.Webhooks.SendTest(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitDelivery(t, m, e.ID, d.ID, notify.DeliveryDelivered)
	if pings := rc.ofType("ping"); len(pings) != 2 || pings[1].delivery() != d.ID {
		t.Fatalf("%d pings after resume", len(pings))
	}
}

// TestWebhookAdminAudit: each webhook change made on /admin (add, test, redeliver, resume, rotate,
// remove) leaves its audit row by the admin, in order, with the endpoint (or delivery) as target;
// a refused change (not paused) leaves none; no signing secret is ever in audit_log.
func TestWebhookAdminAudit(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	ctx := context.Background()
	root := newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	admin := newAdminClient(t, m, &root)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusGone)
		}
	})
	secretRE := regexp.MustCompile(`whsec_[0-9a-f]+`)
	form := func(kv ...string) url.Values {
		v := url.Values{"_csrf": {admin.csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	resp, body := admin.post("/admin/webhooks", form("url", rc.srv.URL+"/in", "events", "message.created", "description", "crm"))
	secret := secretRE.FindString(body)
	if resp.StatusCode != http.StatusCreated || secret == "" {
		t.Fatalf("add: %d, secret %q", resp.StatusCode, secret)
	}
	es, _ := m.Webhooks.List(ctx)
	if len(es) != 1 {
		t.Fatalf("endpoints %v", es)
	}
	id := itoa(es[0].ID)
	if resp, _ := admin.post("/admin/webhooks/"+id+"/test", form()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	ds, _ := m.Webhooks.Deliveries(ctx, es[0].ID, 10)
	if len(ds) != 1 {
		t.Fatalf("deliveries %v", ds)
	}
	waitDelivery(t, m, es[0].ID, ds[0].ID, notify.DeliveryFailed) // 410: paused
	if resp, _ := admin.post("/admin/webhooks/"+id+"/deliveries/"+ds[0].ID+"/redeliver", form()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeliver: %d", resp.StatusCode)
	}
	if resp, _ := admin.post("/admin/webhooks/"+id+"/resume", form()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/webhooks?resumed=1" {
		t.Fatalf("resume: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := admin.post("/admin/webhooks/"+id+"/resume", form()); resp.StatusCode != http.StatusConflict {
		t.Fatalf("resume of an active endpoint: %d", resp.StatusCode)
	}
	resp, body = admin.post("/admin/webhooks/"+id+"/rotate", form())
	rotated := secretRE.FindString(body)
	if resp.StatusCode != http.StatusOK || rotated == "" || rotated == secret {
		t.Fatalf("rotate: %d, secret %q", resp.StatusCode, rotated)
	}
	if resp, _ := admin.post("/admin/webhooks/"+id+"/delete", form()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}

	rows := auditRows(t, m, "webhook.%")
	want := []struct{ action, target, detail string }{
		{"webhook.add", id, rc.srv.URL + "/in"},
		{"webhook.test", id, ds[0].ID},
		{"webhook.redeliver", ds[0].ID, `"endpoint_id": ` + id},
		{"webhook.resume", id, "410"},
		{"webhook.rotate", id, "previous_expires_at"},
		{"webhook.remove", id, rc.srv.URL + "/in"},
	}
	if len(rows) != len(want) {
		t.Fatalf("audit rows %+v", rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Action != w.action || r.User != "root" || r.Target != w.target || !strings.Contains(r.Details, w.detail) || strings.Contains(r.Details, "token") {
			t.Errorf("audit row %d: %+v, want %s by root on %s with %s", i, r, w.action, w.target, w.detail)
		}
	}
	var n int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE target || details::text LIKE '%whsec_%'
		OR strpos(target || details::text, $1) > 0 OR strpos(target || details::text, $2) > 0`, secret, rotated).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d audit rows carry a secret (%v)", n, err)
	}
}
