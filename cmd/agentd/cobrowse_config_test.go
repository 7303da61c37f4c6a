package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"agentd/notify"
)

// TestCoBrowseContextConfig: a co-browse context key shorter than 32 bytes or a bad TTL stops
// agentd with one line naming the setting; a good key and TTL are used; without a key each node
// signs with a random one of its own. Not parallel: it sets environment variables.
func TestCoBrowseContextConfig(t *testing.T) {
	serve := []string{"serve", "--database-url=postgres://x@127.0.0.1/x"}
	for name, tc := range map[string]struct{ env, value, want string }{
		"ErrShortKey": {"AGENTD_COBROWSE_CONTEXT_KEY", strings.Repeat("k", 31), "AGENTD_COBROWSE_CONTEXT_KEY must be at least 32 bytes"},
		"ErrBadTTL":   {"AGENTD_COBROWSE_CONTEXT_TTL", "soon", "AGENTD_COBROWSE_CONTEXT_TTL must be a positive duration"},
		"ErrZeroTTL":  {"AGENTD_COBROWSE_CONTEXT_TTL", "0s", "AGENTD_COBROWSE_CONTEXT_TTL must be a positive duration"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			err := run(context.Background(), serve)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v: want one line containing %q", err, tc.want)
			}
		})
	}
	t.Run("Set", func(t *testing.T) {
		key := strings.Repeat("k", 32)
		t.Setenv("AGENTD_COBROWSE_CONTEXT_KEY", key)
		t.Setenv("AGENTD_COBROWSE_CONTEXT_TTL", "90s")
		var c Config
		if err := c.loadCoBrowse(); err != nil || c.Agent.CoBrowseContextKey != key || c.Agent.CoBrowseContextTTL != 90*time.Second {
			t.Fatalf("%+v %v", c.Agent, err)
		}
	})
	var c Config
	if err := c.loadCoBrowse(); err != nil || c.Agent.CoBrowseContextKey != "" || c.Agent.CoBrowseContextTTL != notify.CoBrowseContextTTL {
		t.Fatalf("defaults: %+v, %v", c.Agent, err)
	}
	// Without a key each node makes its own, and warns when the template uses {context}.
	db := newDB(t)
	var logs [3]lockedBuffer
	nodes := make([]*Main, 3)
	for i, tmpl := range []string{"https://cb.example/join?ctx={context}", "https://cb.example/join?ctx={context}", "https://cb.example/join/{CoBrowseSessionId}"} {
		nodes[i] = startNodeWith(t, db, func(m *Main) { m.Logger = slog.New(slog.NewTextHandler(&logs[i], nil)) },
			func(c *Config) { c.Agent.CoBrowseURL = tmpl })
	}
	ka, kb := nodes[0].Config.Agent.CoBrowseContextKey, nodes[1].Config.Agent.CoBrowseContextKey
	if len(ka) < notify.CoBrowseKeyMinLen || len(kb) < notify.CoBrowseKeyMinLen || ka == kb {
		t.Fatalf("random keys of %d and %d bytes, equal: %v", len(ka), len(kb), ka == kb)
	}
	const warning = "AGENTD_COBROWSE_CONTEXT_KEY is not set: co-browse contexts are signed with a random key"
	if !strings.Contains(logs[0].String(), "level=WARN") || !strings.Contains(logs[0].String(), warning) || strings.Contains(logs[2].String(), warning) {
		t.Fatalf("logs with {context}: %q; without: %q", logs[0].String(), logs[2].String())
	}
}
