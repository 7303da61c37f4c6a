package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"agentd/agent"
	"agentd/notify"
	"agentd/userdata"
	"agentd/web/devtools"
)

// TestDevSeedsTheDemo (first-time user: "make run should show every feature in the first chat"):
// agentd dev seeds dispositions, a survey and canned responses, without touching what an admin
// configured, however often it runs; and it serves a demo co-browse provider page that the
// console may frame, which agentd serve does not.
func TestDevSeedsTheDemo(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	m := startNode(t, db, func(c *Config) { c.Dev = true })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Mine"}}) // an admin's choice
	for range 2 {
		if err := seedDemo(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string][]string{"default": {"Mine"}, "support": {"Resolved", "Follow-up needed", "Escalated", "No answer from customer"}, "sales": nil} {
		_, st := serviceByName(t, m, name)
		if want != nil && strings.Join(st.Dispositions, ",") != strings.Join(want, ",") {
			t.Errorf("%s dispositions %v, want %v", name, st.Dispositions, want)
		}
		if name != "default" && (st.SurveyWhen() != "ended" || len(st.Dispositions) == 0) {
			t.Errorf("%s: survey %q, %d dispositions", name, st.SurveyWhen(), len(st.Dispositions))
		}
	}
	if cs, err := m.Admin.CannedResponses(ctx, ""); err != nil || len(cs) != len(demoCanned) {
		t.Fatalf("%d canned responses (%v), want %d", len(cs), err, len(demoCanned))
	}
	if !strings.Contains(m.Config.Agent.CoBrowseURL, devtools.CoBrowsePath) {
		t.Fatalf("dev co-browse URL %q", m.Config.Agent.CoBrowseURL)
	}

	get := func(base, query string) *http.Response {
		t.Helper()
		resp, err := http.Get(base + devtools.CoBrowsePath + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get(m.URL(), "?session=CB-1&chat=x")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Fatalf("demo provider: %d %q %q", resp.StatusCode, resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"))
	}
	if get(m.URL(), "").StatusCode != http.StatusNotFound {
		t.Fatal("the demo provider answered without a session")
	}
	if serve := startNode(t, db); get(serve.URL(), "?session=CB-1").StatusCode != http.StatusNotFound {
		t.Fatal("agentd serve serves the demo provider")
	}
}

// TestBrowserDevCoBrowse: in dev mode the console's co-browse panel shows the demo provider's
// page, live, when the customer shares a session id; the iframe's URL carries a signed context
// that verifies with the node's key and names the agent, the chat and the session, and the
// provider page shows who is watching, escaped.
func TestBrowserDevCoBrowse(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Dev = true; c.Router.RouteInterval = 50 * time.Millisecond })
	u, err := m.Accounts.CreateUser(context.Background(), agent.NewUser{Username: "dev", Password: "password-dev", Role: agent.RoleAgent,
		DisplayName: "Dev <i>One</i>", Capacity: 1, Services: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	tab := newTab(t, newBrowser(t))
	consoleFor(t, tab, m.URL(), "dev")
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{userdata.KeyCoBrowseSessionID: "CB-<b>7</b>"}}))
	poll(t, tab, "the demo provider's page in the co-browse panel", `(() => {
		const f = document.querySelector('#cobrowse-`+id+` iframe.cobrowse-frame');
		const d = f && f.contentDocument;
		return !!d && d.getElementById('cobrowse-session')?.textContent === 'CB-<b>7</b>';
	})()`)
	// The console's join rewrites UserData, which renders the panel (and a fresh context) again:
	// wait for the page in the frame that stays.
	poll(t, tab, "the provider page naming the watcher", `(() => {
		const d = document.querySelector('#cobrowse-`+id+` iframe.cobrowse-frame')?.contentDocument;
		return !!d && d.getElementById('cobrowse-agent')?.textContent === 'Dev <i>One</i> (dev)' && !d.querySelector('#cobrowse-watcher i');
	})()`)
	src, err := url.Parse(eval[string](t, tab, `document.querySelector('#cobrowse-`+id+` iframe.cobrowse-frame').src`))
	if err != nil {
		t.Fatal(err)
	}
	cx, err := notify.VerifyCoBrowseContext([]byte(m.Config.Agent.CoBrowseContextKey), src.Query().Get("context"), time.Now())
	if err != nil {
		t.Fatalf("the iframe's context does not verify: %v (%s)", err, src)
	}
	if cx.InteractionID != id || cx.SessionID != "CB-<b>7</b>" || cx.Agent != (notify.CoBrowseAgent{ID: u.ID, Username: "dev", Name: "Dev <i>One</i>"}) ||
		cx.ExpiresAt-cx.IssuedAt != int64(notify.CoBrowseContextTTL/time.Second) {
		t.Fatalf("context claims %+v", cx)
	}
}

// TestDevCoBrowseContextRefused: the demo provider page says a missing, forged, expired or
// other session's context is refused, and names nobody.
func TestDevCoBrowseContextRefused(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Dev = true })
	key := []byte(m.Config.Agent.CoBrowseContextKey)
	a := notify.CoBrowseAgent{ID: 1, Username: "mallory", Name: "Mallory"}
	good := notify.SignCoBrowseContext(key, a, "chat-1", "CB-1", time.Now(), 0)
	for name, tc := range map[string]struct{ context, want string }{
		"OK":              {good, `id="cobrowse-agent">Mallory (mallory)</strong>`},
		"ErrMissing":      {"", "The co-browse context is malformed or not signed by agentd."},
		"ErrWrongKey":     {notify.SignCoBrowseContext([]byte("not the node's key, 32 bytes long"), a, "chat-1", "CB-1", time.Now(), 0), "not signed by agentd"},
		"ErrExpired":      {notify.SignCoBrowseContext(key, a, "chat-1", "CB-1", time.Now().Add(-time.Hour), 0), "The co-browse context has expired."},
		"ErrOtherSession": {notify.SignCoBrowseContext(key, a, "chat-1", "CB-2", time.Now(), 0), "The co-browse context is for another session."},
	} {
		resp, err := http.Get(m.URL() + devtools.CoBrowsePath + "?" + url.Values{"session": {"CB-1"}, "chat": {"chat-1"}, "context": {tc.context}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) || (name != "OK" && strings.Contains(string(body), "Mallory")) {
			t.Errorf("%s: %d, want %q in %s", name, resp.StatusCode, tc.want, body)
		}
	}
}
