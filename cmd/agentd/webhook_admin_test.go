package main

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"agentd/agent"
	"agentd/notify"
)

// TestWebhookAdminBrowser: an admin adds an endpoint on /admin/webhooks in chromium, sees the
// secret once (not after a reload), sends a test event that shows in the delivery log as
// delivered and signed with that secret, redelivers it (the same delivery id again), rotates
// and removes the endpoint; every page is axe-clean, and a receiver's response is shown as text.
func TestWebhookAdminBrowser(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		_, _ = w.Write([]byte(`<img src=x onerror="window.pwned=1"> thanks`))
	})
	base := m.URL()
	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate(base+"/admin/webhooks"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), "root-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	poll(t, tab, "webhooks page", `location.pathname === '/admin/webhooks' && !!document.getElementById('add-webhook')`)
	checkAxe(t, tab, "webhooks page")

	// A bad URL comes back with the field marked and what was typed kept.
	setValues(t, tab, map[string]string{"url": "ftp://example.com/x", "description": "CRM"})
	setChecked(t, tab, "event-message.created", true)
	adminSubmit(t, tab, "add-webhook", `!!document.getElementById('err-url')`)
	if !eval[bool](t, tab, `document.getElementById('event-message.created').checked && document.getElementById('description').value === 'CRM'`) {
		t.Fatal("the form came back without what was typed")
	}
	checkAxe(t, tab, "webhooks page with errors")

	setValues(t, tab, map[string]string{"url": rc.srv.URL + "/hook"})
	adminSubmit(t, tab, "add-webhook", `!!document.getElementById('secret-value')`)
	secret := eval[string](t, tab, `document.getElementById('secret-value').textContent`)
	if !strings.HasPrefix(secret, notify.SecretPrefix) {
		t.Fatalf("secret shown: %q", secret)
	}
	checkAxe(t, tab, "webhook page with its secret")
	path := eval[string](t, tab, `document.querySelector('#test-form').getAttribute('action').replace('/test', '')`)
	adminGo(t, tab, base+path, `!!document.getElementById('send-test')`)
	if eval[bool](t, tab, `!!document.getElementById('secret-value') || document.body.textContent.includes(`+jsString(secret)+`)`) {
		t.Fatal("the secret is shown again")
	}

	adminSubmit(t, tab, "send-test", `document.getElementById('flash')?.textContent.startsWith('Test event queued')`)
	waitFor(t, "the test delivery", func() bool { return len(rc.ofType("ping")) == 1 })
	r := rc.ofType("ping")[0]
	if verifySignature(t, r.Header.Get("Agentd-Signature"), r.Body, secret) != 1 {
		t.Fatal("the test event is not signed with the secret shown")
	}
	// The log shows the delivery delivered (reload until the worker has recorded it).
	waitFor(t, "the delivery logged", func() bool {
		adminGo(t, tab, base+path, `!!document.getElementById('send-test')`)
		return eval[bool](t, tab, `document.querySelector('#deliveries-table tbody tr .state')?.textContent === 'delivered'`)
	})
	row := eval[[]string](t, tab, `(() => { const tr = document.querySelector('#deliveries-table tbody tr');
		return [tr.dataset.id, tr.querySelector('.status').textContent, tr.querySelector('.attempts').textContent, tr.querySelector('.details code').textContent]; })()`)
	if row[0] != r.delivery() || row[1] != "200" || row[2] != "1" || !strings.Contains(row[3], `<img src=x`) {
		t.Fatalf("delivery row %q", row)
	}
	if eval[bool](t, tab, `window.pwned === 1 || !!document.querySelector('#deliveries-table img')`) {
		t.Fatal("the receiver's response ran as HTML")
	}
	checkAxe(t, tab, "webhook page with deliveries")

	browse(t, tab, chromedp.Click(chromedp.CSS(`#deliveries-table button.redeliver`)))
	poll(t, tab, "redelivered", `document.getElementById('flash')?.textContent === 'Delivery queued again.'`)
	waitFor(t, "the redelivery", func() bool { return len(rc.ofType("ping")) == 2 })
	if again := rc.ofType("ping")[1]; again.delivery() != r.delivery() {
		t.Fatalf("redelivered as %s, want %s", again.delivery(), r.delivery())
	}

	adminSubmit(t, tab, "rotate-secret", `!!document.getElementById('secret-value')`)
	if s2 := eval[string](t, tab, `document.getElementById('secret-value').textContent`); s2 == secret || !strings.HasPrefix(s2, notify.SecretPrefix) {
		t.Fatalf("rotated secret %q", s2)
	}
	adminSubmit(t, tab, "remove-webhook", `document.getElementById('flash')?.textContent === 'Endpoint removed.'`)
	if es, _ := m.Webhooks.List(context.Background()); len(es) != 0 {
		t.Fatalf("endpoints after remove: %v", es)
	}
}

// TestWebhookAdminAccess: only admins reach /admin/webhooks, and a form without the session's
// CSRF token changes nothing.
func TestWebhookAdminAccess(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), hookConfig)
	ctx := context.Background()
	root := newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	sup := newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	rc := newReceiver(t, nil)
	e, _ := addHook(t, m, rc.srv.URL)
	admin, other, anon := newAdminClient(t, m, &root), newAdminClient(t, m, &sup), newAdminClient(t, m, nil)
	paths := []string{"/admin/webhooks", "/admin/webhooks/" + itoa(e.ID)}
	for _, p := range paths {
		if resp, _ := other.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("supervisor GET %s: %d", p, resp.StatusCode)
		}
		if resp, _ := anon.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("anonymous GET %s: %d", p, resp.StatusCode)
		}
	}
	for _, p := range []string{"/admin/webhooks", "/admin/webhooks/" + itoa(e.ID) + "/test", "/admin/webhooks/" + itoa(e.ID) + "/rotate",
		"/admin/webhooks/" + itoa(e.ID) + "/delete"} {
		form := url.Values{"url": {rc.srv.URL}}
		if resp, _ := admin.post(p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without CSRF: %d", p, resp.StatusCode)
		}
		form.Set("_csrf", admin.csrf)
		if resp, _ := other.post(p, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("supervisor POST %s: %d", p, resp.StatusCode)
		}
	}
	es, _ := m.Webhooks.List(ctx)
	ds, _ := m.Webhooks.Deliveries(ctx, e.ID, 10)
	if len(es) != 1 || len(ds) != 0 || es[0].PreviousExpiresAt != nil {
		t.Fatalf("forged forms changed something: %v, %d deliveries", es, len(ds))
	}
	// Unknown endpoints and deliveries are 404s.
	for _, p := range []string{"/admin/webhooks/999", "/admin/webhooks/abc"} {
		if resp, _ := admin.do(http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	resp, _ := admin.post("/admin/webhooks/"+itoa(e.ID)+"/deliveries/00000000-0000-0000-0000-000000000000/redeliver", url.Values{"_csrf": {admin.csrf}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("redeliver of an unknown delivery: %d", resp.StatusCode)
	}
	// With the token the form works; a bad URL is 422.
	if resp, body := admin.post("/admin/webhooks", url.Values{"_csrf": {admin.csrf}, "url": {"gopher://x"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "err-url") {
		t.Errorf("bad URL: %d", resp.StatusCode)
	}
	if resp, body := admin.post("/admin/webhooks", url.Values{"_csrf": {admin.csrf}, "url": {rc.srv.URL}, "events": {"nope"}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "nope") {
		t.Errorf("bad event: %d", resp.StatusCode)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
