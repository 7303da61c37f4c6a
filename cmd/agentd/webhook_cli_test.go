package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"agentd/notify"
)

// TestWebhookCLI: agentd webhook add prints the id and the secret once, and the deliveries it
// queues are sent by a running node; list, rotate, test, deliveries, redeliver and remove work,
// and bad input gets a one-line error. Not parallel: it sets AGENTD_WEBHOOK_ALLOW_PRIVATE.
func TestWebhookCLI(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	rc := newReceiver(t, nil)
	var out bytes.Buffer
	run := func(args ...string) string {
		t.Helper()
		out.Reset()
		if err := runWebhook(ctx, append(args, "--database-url", db), &out); err != nil {
			t.Fatalf("agentd webhook %v: %v", args, err)
		}
		return out.String()
	}
	// Without the variable a loopback receiver is refused.
	err := runWebhook(ctx, []string{"add", "--database-url", db, "--url", rc.srv.URL}, &out)
	if err == nil || !strings.Contains(err.Error(), "AGENTD_WEBHOOK_ALLOW_PRIVATE") {
		t.Fatalf("loopback receiver without AGENTD_WEBHOOK_ALLOW_PRIVATE: %v", err)
	}
	t.Setenv("AGENTD_WEBHOOK_ALLOW_PRIVATE", "1")
	added := run("add", "--url", rc.srv.URL+"/in", "--events", "message.created", "--description", "crm")
	m := regexp.MustCompile(`added webhook (\d+) .*\nsecret: (whsec_[0-9a-f]+)\n`).FindStringSubmatch(added)
	if m == nil {
		t.Fatalf("add printed %q", added)
	}
	id, secret := m[1], m[2]
	if list := run("list"); !strings.Contains(list, rc.srv.URL+"/in") || !strings.Contains(list, "active") || strings.Contains(list, secret) {
		t.Fatalf("list printed %q", list)
	}
	node := startNode(t, db, hookConfig)
	test := run("test", "--id", id)
	dm := regexp.MustCompile(`queued test delivery ([0-9a-f-]{36})`).FindStringSubmatch(test)
	if dm == nil {
		t.Fatalf("test printed %q", test)
	}
	waitFor(t, "the test delivery", func() bool { return len(rc.ofType("ping")) == 1 })
	r := rc.ofType("ping")[0]
	if r.delivery() != dm[1] || verifySignature(t, r.Header.Get("Agentd-Signature"), r.Body, secret) != 1 {
		t.Fatalf("delivery %s, signature %q", r.delivery(), r.Header.Get("Agentd-Signature"))
	}
	var eid int64
	if e, err := node.Webhooks.List(ctx); err != nil || len(e) != 1 {
		t.Fatalf("endpoints %v %v", e, err)
	} else {
		eid = e[0].ID
	}
	waitDelivery(t, node, eid, dm[1], notify.DeliveryDelivered)
	if ds := run("deliveries", "--id", id); !strings.Contains(ds, dm[1]) || !strings.Contains(ds, "delivered") {
		t.Fatalf("deliveries printed %q", ds)
	}
	run("redeliver", "--delivery", dm[1])
	waitFor(t, "the redelivery", func() bool { return len(rc.ofType("ping")) == 2 })
	if again := rc.ofType("ping")[1]; again.delivery() != dm[1] {
		t.Fatalf("redelivery under %s, want %s", again.delivery(), dm[1])
	}
	rot := run("rotate", "--id", id)
	sm := regexp.MustCompile(`secret: (whsec_[0-9a-f]+)\nThe previous secret also signs until `).FindStringSubmatch(rot)
	if sm == nil || sm[1] == secret {
		t.Fatalf("rotate printed %q", rot)
	}
	for name, args := range map[string][]string{
		"ErrNoURL":         {"add"},
		"ErrBadURL":        {"add", "--url", "ftp://example.com/"},
		"ErrBadEvent":      {"add", "--url", rc.srv.URL, "--events", "message.created,nope"},
		"ErrPingEvent":     {"add", "--url", rc.srv.URL, "--events", "ping"},
		"ErrNoID":          {"remove"},
		"ErrUnknownID":     {"remove", "--id", "999"},
		"ErrRotateUnknown": {"rotate", "--id", "999"},
		"ErrTestUnknown":   {"test", "--id", "999"},
		"ErrDeliveries":    {"deliveries", "--id", "999"},
		"ErrNoDelivery":    {"redeliver"},
		"ErrBadDelivery":   {"redeliver", "--delivery", "not-a-uuid"},
		"ErrUnknownVerb":   {"frobnicate"},
		"ErrNoSubcommand":  {},
	} {
		args = append(args, "--database-url", db)
		if len(args) == 2 {
			args = nil
		}
		if err := runWebhook(ctx, args, &out); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want a one-line error, got %v", name, err)
		}
	}
	if got := run("remove", "--id", id); !strings.Contains(got, "removed webhook "+id) {
		t.Fatalf("remove printed %q", got)
	}
	if list := run("list"); strings.Contains(list, rc.srv.URL) {
		t.Fatalf("list after remove: %q", list)
	}
}

// TestWebhookConfigErrors: bad webhook settings stop agentd with one line naming the setting.
// Not parallel: it sets environment variables.
func TestWebhookConfigErrors(t *testing.T) {
	serve := []string{"serve", "--database-url=postgres://x@127.0.0.1/x"}
	for name, tc := range map[string]struct {
		env, value string
		args       []string
		want       string
	}{
		"ErrBadTimeout":      {"AGENTD_WEBHOOK_TIMEOUT", "soon", nil, "AGENTD_WEBHOOK_TIMEOUT must be a positive duration"},
		"ErrZeroTimeout":     {"AGENTD_WEBHOOK_TIMEOUT", "0s", nil, "AGENTD_WEBHOOK_TIMEOUT must be a positive duration"},
		"ErrBadAllowPrivate": {"AGENTD_WEBHOOK_ALLOW_PRIVATE", "yes", nil, "AGENTD_WEBHOOK_ALLOW_PRIVATE must be 1 or 0"},
		"ErrBadRotationEnv":  {"AGENTD_WEBHOOK_ROTATION_WINDOW", "a day", nil, "AGENTD_WEBHOOK_ROTATION_WINDOW must be a positive duration"},
		"ErrBadRotationFlag": {"", "", []string{"--webhook-rotation-window=-1h"}, "AGENTD_WEBHOOK_ROTATION_WINDOW must be a positive duration"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.value)
			}
			err := run(context.Background(), append(append([]string{}, serve...), tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v: want one line containing %q", err, tc.want)
			}
		})
	}
	var c Config
	c.Webhooks.Timeout = time.Second // set in code, kept
	if err := c.loadWebhooks(); err != nil || c.Webhooks.Timeout != time.Second || c.Webhooks.RotationWindow != 24*time.Hour || c.Webhooks.AllowPrivate {
		t.Fatalf("defaults: %+v, %v", c.Webhooks, err)
	}
}
