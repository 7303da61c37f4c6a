package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"agentd/agent"
	"agentd/userdata"
)

// TestCustomerCannotReadKeysTakenOver (security probe finding 9): a customer who creates a key
// first, such as Disposition, must not read what the agent side writes into it. The writer owns
// the key after its write, and the key is visible only if the writer says so.
func TestCustomerCannotReadKeysTakenOver(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Fraud suspected"}})
	u := newAgent(t, m, "vera", 1)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{
		"Disposition": "mine", "Notes": "mine", userdata.KeyCoBrowseSessionsQuantity: 0, userdata.KeyCoBrowseSessionID: "CB-7"}}))

	// The agent writes into them: an edit without the visible box, co-browse write-back, the
	// wrap-up's Disposition.
	hidden := false
	if err := m.Agents.ChangeUserData(ctx, u, id, "console:n1", []userdata.Change{{Key: "Notes", Value: "VIP, handle with care", Visible: &hidden}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.CoBrowseJoined(ctx, u, id, "CB-7"); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, u, id, "Fraud suspected", ""); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"Disposition", "Notes", userdata.KeyCoBrowseSessionsQuantity} {
		if d := mustOK(t, c.do("get_userdata", map[string]any{"key": key})); d.str("user_data") != "{}" {
			t.Errorf("the customer reads %s after the agent side wrote it: %s", key, d.str("user_data"))
		}
	}
	// The pushes say the keys went away for the customer; none carries the agent's value.
	change := func(f frame, key string) (any, bool) {
		ch, _ := f["changes"].(map[string]any)
		v, ok := ch[key]
		return v, ok && f["type"] == "userdata"
	}
	c.waitFrame("Disposition gone", func(f frame) bool {
		v, ok := change(f, "Disposition")
		return ok && v == nil
	})
	for _, f := range c.snapshot() {
		for _, key := range []string{"Disposition", "Notes", userdata.KeyCoBrowseSessionsQuantity} {
			if v, ok := change(f, key); ok && v != nil {
				t.Fatalf("a push gave the customer the agent's %s: %v", key, f)
			}
		}
	}
	// Agents still see everything, with the new owner.
	for _, e := range mustUserData(t, m, id) {
		if e.Key == "Disposition" && (e.Owner != userdata.OwnerAgent || e.CustomerCanRead()) {
			t.Fatalf("Disposition: owner %s, customer can read %v", e.Owner, e.CustomerCanRead())
		}
	}
}

func mustUserData(t *testing.T, m *Main, id string) []userdata.Entry {
	t.Helper()
	es, err := m.Chat.UserData(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestNoOpenRedirect (security probe finding 6): after signing in, next= only ever leads to a
// page of this site.
func TestNoOpenRedirect(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAgent(t, m, "rita", 1)
	for _, next := range []string{"/%09/evil.example/", "/%5C/evil.example", "//evil.example", "https://evil.example", "/%0D%0A/evil.example"} {
		c := httpClient(t)
		// The sign-in form carries next on, and a signed-in visit to /login follows it.
		_, page := get(t, c, m.URL()+"/login?next="+next)
		csrf := hiddenCSRF.FindStringSubmatch(page)
		if csrf == nil {
			t.Fatal("no sign-in form")
		}
		resp, _ := postForm(t, c, m.URL()+"/login", url.Values{"_csrf": {csrf[1]}, "username": {"rita"}, "password": {"password-rita"}, "next": {mustUnescape(t, next)}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/console" {
			t.Fatalf("sign-in with next=%s: %d to %q, want 303 to /console", next, resp.StatusCode, loc)
		}
		resp, _ = get(t, c, m.URL()+"/login?next="+next)
		if loc := resp.Header.Get("Location"); loc != "/console" {
			t.Fatalf("signed-in /login?next=%s leads to %q, want /console", next, loc)
		}
	}
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	u, err := url.QueryUnescape(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
