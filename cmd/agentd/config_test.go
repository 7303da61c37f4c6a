package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"agentd/agent"
	"agentd/jobs"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/customer"
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
		"ErrBadRetention":   {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--command-retention=forever"}, "AGENTD_COMMAND_RETENTION must be a positive duration"},
		"ErrEventRetention": {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--event-retention=a-month"}, "AGENTD_EVENT_RETENTION must be a positive duration"},
		"ErrZeroRetention":  {[]string{"serve", "--database-url=postgres://x@127.0.0.1/x", "--command-retention=0s"}, "AGENTD_COMMAND_RETENTION must be a positive duration"},
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

func TestMetrics(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	scrape := func(t *testing.T, m *Main, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, m.URL()+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("OK_Loopback", func(t *testing.T) {
		m := startNode(t, db)
		c, _ := startSession(t, m, nil)
		mustOK(t, c.do("send_message", map[string]any{"text": "counted"}))
		mustErr(t, c.do("send_message", map[string]any{"text": ""}), "invalid_text")
		if resp, err := http.Get(m.URL() + "/healthz"); err == nil {
			resp.Body.Close()
		}
		// Refused requests count with the status the client got (security probe finding 12).
		newAgent(t, m, "mona", 1)
		hc := httpClient(t)
		login(t, hc, m.URL(), "mona", "password-mona")
		if resp, _ := get(t, hc, m.URL()+"/admin"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an agent on /admin: %d", resp.StatusCode)
		}
		if resp, _ := get(t, hc, m.URL()+"/console/history/not-a-chat"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("another's history: %d", resp.StatusCode)
		}
		status, body := scrape(t, m, "")
		for _, want := range []string{
			`agentd_commands_total{cmd="send_message",result="ok",surface="customer"} 1`,
			`agentd_commands_total{cmd="send_message",result="invalid_text",surface="customer"} 1`,
			`agentd_websocket_connections 1`,
			`agentd_queue_waiting{service="default"} 1`,
			`agentd_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
			`agentd_http_requests_total{method="GET",route="/admin",status="403"} 1`,
			`agentd_http_requests_total{method="GET",route="/console/history/:id",status="403"} 1`,
		} {
			if status != http.StatusOK || !strings.Contains(body, want) {
				t.Fatalf("metrics (%d) lack %s", status, want)
			}
		}
	})

	t.Run("ErrToken", func(t *testing.T) {
		m := startNode(t, db, func(c *Config) { c.MetricsToken = "scrape-secret" })
		if status, _ := scrape(t, m, ""); status != http.StatusUnauthorized {
			t.Fatalf("metrics without the token: %d", status)
		}
		if status, _ := scrape(t, m, "wrong"); status != http.StatusUnauthorized {
			t.Fatalf("metrics with a wrong token: %d", status)
		}
		if status, body := scrape(t, m, "scrape-secret"); status != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("metrics with the token: %d", status)
		}
	})
}

// TestConfigSetInCode: values a program (or a test) sets before load are kept unless the
// environment sets them; what is left unset gets the defaults.
func TestConfigSetInCode(t *testing.T) {
	c := Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	c.Customer.StartsPerMinute = 1000
	c.Chat.UserDataLimits.MaxKeys = 5
	c.Jobs.PruneInterval = time.Minute
	if err := c.load(); err != nil {
		t.Fatal(err)
	}
	if c.Customer.StartsPerMinute != 1000 || c.Customer.StartBurst != 1000 || c.Chat.UserDataLimits.MaxKeys != 5 || c.Jobs.PruneInterval != time.Minute {
		t.Fatalf("code-set values lost: starts %d burst %d max keys %d prune interval %v",
			c.Customer.StartsPerMinute, c.Customer.StartBurst, c.Chat.UserDataLimits.MaxKeys, c.Jobs.PruneInterval)
	}
	if c.Customer.ConnectsPerMinute != customer.DefaultConfig.ConnectsPerMinute || c.Chat.UserDataLimits.MaxValueBytes != userdata.DefaultLimits.MaxValueBytes ||
		c.Jobs.CommandRetention != jobs.DefaultConfig.CommandRetention {
		t.Fatalf("unset values not defaulted: %+v %+v %+v", c.Customer, c.Chat.UserDataLimits, c.Jobs)
	}
	t.Setenv("AGENTD_USERDATA_MAX_KEYS", "7")
	t.Setenv("AGENTD_COMMAND_RETENTION", "90m")
	c2 := Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	c2.Chat.UserDataLimits.MaxKeys = 5
	c2.Jobs.CommandRetention = time.Hour
	if err := c2.load(); err != nil {
		t.Fatal(err)
	}
	if c2.Chat.UserDataLimits.MaxKeys != 7 || c2.Jobs.CommandRetention != 90*time.Minute {
		t.Fatalf("the environment did not override: max keys %d, command retention %v", c2.Chat.UserDataLimits.MaxKeys, c2.Jobs.CommandRetention)
	}
}

// TestSessionMaxAgeSetting: AGENTD_SESSION_MAX_AGE defaults to a week, a value set in code is kept
// unless the environment sets one, and a bad value is one line naming the variable.
func TestSessionMaxAgeSetting(t *testing.T) {
	base := func() Config {
		return Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	}
	c := base()
	if err := c.load(); err != nil || c.Accounts.SessionMaxAge != agent.DefaultSessionMaxAge {
		t.Fatalf("default: %v %v", c.Accounts.SessionMaxAge, err)
	}
	c = base()
	c.Accounts.SessionMaxAge = 2 * time.Hour
	if err := c.load(); err != nil || c.Accounts.SessionMaxAge != 2*time.Hour {
		t.Fatalf("set in code: %v %v", c.Accounts.SessionMaxAge, err)
	}
	t.Setenv("AGENTD_SESSION_MAX_AGE", "36h")
	if err := c.load(); err != nil || c.Accounts.SessionMaxAge != 36*time.Hour {
		t.Fatalf("from the environment: %v %v", c.Accounts.SessionMaxAge, err)
	}
	for _, bad := range []string{"forever", "0s", "-1h"} {
		t.Setenv("AGENTD_SESSION_MAX_AGE", bad)
		c := base()
		if err := c.load(); err == nil || !strings.Contains(err.Error(), "AGENTD_SESSION_MAX_AGE must be a positive duration") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// TestHTTPSettings: the HTTP server's settings default as documented, a value set in code is
// kept unless the environment sets one, and a bad value stops `agentd serve` with one line naming
// the variable.
func TestHTTPSettings(t *testing.T) {
	base := func() Config {
		return Config{Addr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x", LogFormat: "text"}
	}
	c := base()
	if err := c.load(); err != nil || c.HTTP != DefaultHTTPConfig {
		t.Fatalf("defaults: %+v %v, want %+v", c.HTTP, err, DefaultHTTPConfig)
	}
	if c.HTTP.IdleTimeout != time.Minute || c.HTTP.MaxConnsPerAddr != 256 || c.HTTP.MaxConns != 0 {
		t.Fatalf("documented defaults changed: %+v", c.HTTP)
	}
	c = base()
	c.HTTP = HTTPConfig{ReadTimeout: time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second, MaxConnsPerAddr: 4, MaxConns: 5}
	want := c.HTTP
	if err := c.load(); err != nil || c.HTTP != want {
		t.Fatalf("set in code: %+v %v, want %+v", c.HTTP, err, want)
	}
	t.Setenv("AGENTD_HTTP_IDLE_TIMEOUT", "90s")
	t.Setenv("AGENTD_MAX_CONNS_PER_ADDR", "1000")
	t.Setenv("AGENTD_MAX_CONNS", "5000")
	if err := c.load(); err != nil || c.HTTP.IdleTimeout != 90*time.Second || c.HTTP.MaxConnsPerAddr != 1000 || c.HTTP.MaxConns != 5000 {
		t.Fatalf("from the environment: %+v %v", c.HTTP, err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"AGENTD_HTTP_IDLE_TIMEOUT", "forever", "AGENTD_HTTP_IDLE_TIMEOUT must be a positive duration"},
		{"AGENTD_HTTP_IDLE_TIMEOUT", "0s", "AGENTD_HTTP_IDLE_TIMEOUT must be a positive duration"},
		{"AGENTD_MAX_CONNS_PER_ADDR", "0", "AGENTD_MAX_CONNS_PER_ADDR must be a positive integer"},
		{"AGENTD_MAX_CONNS_PER_ADDR", "many", "AGENTD_MAX_CONNS_PER_ADDR must be a positive integer"},
		{"AGENTD_MAX_CONNS", "-1", "AGENTD_MAX_CONNS must be a positive integer"},
		{"AGENTD_MAX_CONNS", "lots", "AGENTD_MAX_CONNS must be a positive integer"},
	} {
		t.Run("Err"+tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			err := run(context.Background(), []string{"serve", "--database-url=postgres://x@127.0.0.1/x"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%s=%s: %v, want one line containing %q", tc.name, tc.value, err, tc.want)
			}
		})
	}
}

// TestConnBudget: the node's default connection cap keeps descriptors for the database pool,
// the LISTEN connection, files and refusals in progress, and a limit too low to leave any is an
// error naming what to change.
func TestConnBudget(t *testing.T) {
	t.Parallel()
	if n := descriptorLimit(); n <= 0 {
		t.Fatalf("descriptor limit %d", n)
	}
	if n, err := connBudget(20000, 8); err != nil || n != 20000-8-1-fileReserve-web.MaxRefusing {
		t.Fatalf("budget of 20000 descriptors with 8 pool connections: %d %v", n, err)
	}
	if _, err := connBudget(100, 8); err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE 100") || !strings.Contains(err.Error(), "AGENTD_MAX_CONNS") {
		t.Fatalf("a limit of 100: %v", err)
	}
}
