package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestConfigErrors checks that configuration mistakes end with one clear line naming the setting.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"ErrNoDatabaseURL":  {[]string{"serve", "--database-url="}, "DATABASE_URL is not set"},
		"ErrBadDatabaseURL": {[]string{"serve", "--database-url=mysql://x"}, "DATABASE_URL must be a postgres:// URL"},
		"ErrUnparsableURL":  {[]string{"migrate", "--database-url=postgres://a:b@[::1"}, "invalid database URL"},
		"ErrUnreachable":    {[]string{"migrate", "--database-url=postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, "127.0.0.1"},
		"ErrBadOrigins":     {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--allowed-origins=shop.example.com"}, "AGENTD_ALLOWED_ORIGINS: invalid origin"},
		"ErrBadAddr":        {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--addr=8080"}, "AGENTD_ADDR"},
		"ErrBadLogFormat":   {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--log-format=xml"}, "AGENTD_LOG_FORMAT"},
		"ErrUnknownCommand": {[]string{"launch"}, "unknown command"},
		"ErrStrayArgument":  {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "extra"}, "unexpected argument"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine") {
				t.Fatalf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(m.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, body)
		}
	}
	// Migrations not current: not ready, and the reason says why.
	if _, err := m.DB.Pool.Exec(context.Background(), `UPDATE schema_version SET version = version - 1`); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(m.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body["reason"] != "migrations pending" {
		t.Fatalf("/readyz with pending migrations: %d %v", resp.StatusCode, body)
	}
}
