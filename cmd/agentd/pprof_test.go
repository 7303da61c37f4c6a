package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprof: /debug/pprof is absent unless AGENTD_PPROF is on, and when on it is guarded exactly
// as /metrics is (the bearer token when one is set, else loopback only).
func TestPprof(t *testing.T) {
	db := newDB(t)
	fetch := func(t *testing.T, m *Main, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, m.URL()+path, nil)
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

	t.Run("OffByDefault", func(t *testing.T) {
		m := startNode(t, db)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
			if status, _ := fetch(t, m, path, ""); status != http.StatusNotFound {
				t.Fatalf("%s without AGENTD_PPROF: %d, want 404", path, status)
			}
		}
	})

	t.Run("OnLoopback", func(t *testing.T) {
		t.Setenv("AGENTD_PPROF", "1")
		m := startNode(t, db)
		if status, body := fetch(t, m, "/debug/pprof/", ""); status != http.StatusOK || !strings.Contains(body, "goroutine") {
			t.Fatalf("pprof index: %d %.200s", status, body)
		}
		if status, body := fetch(t, m, "/debug/pprof/goroutine?debug=1", ""); status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Fatalf("goroutine profile: %d %.200s", status, body)
		}
		if status, body := fetch(t, m, "/debug/pprof/heap", ""); status != http.StatusOK || len(body) == 0 {
			t.Fatalf("heap profile: %d, %d bytes", status, len(body))
		}
	})

	t.Run("ErrToken", func(t *testing.T) {
		m := startNode(t, db, func(c *Config) { c.Pprof, c.MetricsToken = true, "scrape-secret" })
		if status, _ := fetch(t, m, "/debug/pprof/heap", ""); status != http.StatusUnauthorized {
			t.Fatalf("pprof without the token: %d", status)
		}
		if status, _ := fetch(t, m, "/debug/pprof/heap", "wrong"); status != http.StatusUnauthorized {
			t.Fatalf("pprof with a wrong token: %d", status)
		}
		if status, body := fetch(t, m, "/debug/pprof/goroutine?debug=1", "scrape-secret"); status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Fatalf("pprof with the token: %d", status)
		}
	})
}
