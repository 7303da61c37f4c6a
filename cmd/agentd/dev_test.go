package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"agentd/agent"
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
// page, live, when the customer shares a session id.
func TestBrowserDevCoBrowse(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Dev = true; c.Router.RouteInterval = 50 * time.Millisecond })
	u := newAgent(t, m, "dev", 1)
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
}
