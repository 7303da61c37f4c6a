package main

import (
	"context"
	"testing"
	"time"

	"agentd"
	"agentd/agent"
)

// TestOfferDeadlineOnOneClock: an offer's deadline is set and compared on the same clock, the
// domain's. Before, expires_at came from the node's clock and was compared with the database's
// now(), so a node whose clock ran ahead or behind the database's expired offers early or late.
func TestOfferDeadlineOnOneClock(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	// A long route interval: the test runs its own routing passes.
	m := startNodeAt(t, newDB(t), clock.Now, func(c *Config) { c.Router.RouteInterval = time.Hour })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{AcceptTimeoutSeconds: 30})
	u := newAgent(t, m, "otto", 1)
	ready(t, m, u)
	_, d := startSession(t, m, nil)
	id := d.str("session_id")
	// The node's router, woken by the new chat, may be placing it right now (its row locked, so a
	// pass of ours skips it): wait for the offer rather than expect it from one pass.
	routeUntil(t, m, "the offer", func() bool {
		a, err := m.Agents.Assignment(ctx, u, id)
		return err == nil && a.State == agent.AssignOffered
	})
	a, err := m.Agents.Assignment(ctx, u, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(30 * time.Second); a.ExpiresAt == nil || a.ExpiresAt.Sub(want).Abs() > 5*time.Second {
		t.Fatalf("deadline %v, want about %v", a.ExpiresAt, want)
	}

	clock.Advance(29 * time.Second)
	m.Router.RouteOnce(ctx)
	if a, err := m.Agents.Assignment(ctx, u, id); err != nil || a.State != agent.AssignOffered {
		t.Fatalf("the offer expired before its deadline: %+v %v", a, err)
	}
	clock.Advance(2 * time.Second)
	routeUntil(t, m, "the offer to time out", func() bool {
		_, err := m.Agents.Assignment(ctx, u, id)
		return agentd.ErrorCode(err) == "not_your_chat"
	})
	if got, _ := m.Accounts.User(ctx, u.ID); got.State != agent.StateNotReady || got.NotReadyReason != agent.ReasonMissedOffer {
		t.Fatalf("agent after a missed offer: %s %q", got.State, got.NotReadyReason)
	}
}

// TestSessionMaxAge: a browser session ends at its absolute lifetime however much it is used;
// before, every use slid its expiry, so a session (or a stolen cookie) could live forever.
func TestSessionMaxAge(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	m := startNodeAt(t, newDB(t), clock.Now, func(c *Config) { c.Accounts.SessionMaxAge = 24 * time.Hour })
	ctx := context.Background()
	u := newAgent(t, m, "sara", 1)
	token, _, err := m.Accounts.StartWebSession(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	// Used every 10 hours, within the 12-hour idle limit, it lives until the 24-hour mark.
	for range 2 {
		clock.Advance(10 * time.Hour)
		if _, _, err := m.Accounts.WebSession(ctx, token); err != nil {
			t.Fatalf("session ended early: %v", err)
		}
	}
	clock.Advance(5 * time.Hour)
	if _, _, err := m.Accounts.WebSession(ctx, token); agentd.ErrorCode(err) != "unauthorized" {
		t.Fatalf("session used past its lifetime: %v", err)
	}

	// Unused, it ends after 12 hours.
	token, _, err = m.Accounts.StartWebSession(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(12*time.Hour + time.Minute)
	if _, _, err := m.Accounts.WebSession(ctx, token); agentd.ErrorCode(err) != "unauthorized" {
		t.Fatalf("idle session still valid: %v", err)
	}
}

// routeUntil runs routing passes until cond holds (bounded): a pass of the test's own may skip a
// chat the node's router holds at that moment, and the next one sees it.
func routeUntil(t *testing.T, m *Main, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		m.Router.RouteOnce(context.Background())
		return cond()
	})
}
