package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"agentd/postgres/localpg"
)

// Security probe, issue 7, finding 4: during a 0.45 s Postgres restart 135 sends failed with
// internal, and chat-service.js failed them to the page. A transient failure is now answered
// unavailable, which chat-service.js retries with the same command id.

// cluster is a PostgreSQL server of the test's own, which it may stop and start: the shared test
// server must never be restarted under the other tests.
type cluster struct {
	t    *testing.T
	opts localpg.Options
}

// privateCluster initialises and starts a cluster in a fresh folder on a free port, with an
// empty database agentd (the node migrates it), and returns the database's URL. It takes about a
// second on the 2-core test machine (initdb); it is stopped and removed at cleanup, after the
// node that uses it, since cleanups run last registered first.
func privateCluster(t *testing.T) (*cluster, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agentd-outage-")
	if err != nil {
		t.Fatal(err)
	}
	// As root the server runs as the postgres user, which must be able to enter the folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, opts: localpg.Options{DataDir: filepath.Join(dir, "pg"), Port: freePort(t)}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := localpg.Stop(ctx, c.opts); err != nil {
			t.Errorf("stop the private cluster: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	began := time.Now()
	srv := c.start()
	if err := localpg.CreateDatabase(context.Background(), srv.AdminURL, "agentd", ""); err != nil {
		t.Fatal(err)
	}
	t.Logf("private cluster on port %d ready in %v", c.opts.Port, time.Since(began))
	return c, srv.DatabaseURL("agentd")
}

func (c *cluster) start() *localpg.Server {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := localpg.Ensure(ctx, c.opts)
	if err != nil {
		c.t.Fatal(err)
	}
	return srv
}

// stop shuts the cluster down as an operator's restart does (pg_ctl stop -m fast: sessions are
// terminated with admin_shutdown).
func (c *cluster) stop() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := localpg.Stop(ctx, c.opts); err != nil {
		c.t.Fatal(err)
	}
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// TestDatabaseRestartIsUnavailable: while the database is down, commands are answered
// unavailable, with a description, and the connection stays open; a new session cannot start
// either, with the same code. Once it is back, the command sent again with its id is applied, and
// only once. Before, every one of them was answered internal.
func TestDatabaseRestartIsUnavailable(t *testing.T) {
	t.Parallel()
	pg, dbURL := privateCluster(t)
	m := startNode(t, dbURL)
	c, data := startSession(t, m, nil)
	id := data.str("session_id")
	mustOK(t, c.do("send_message", map[string]any{"text": "before"}))
	newAgent(t, m, "opal", 1)
	hc := httpClient(t)
	login(t, hc, m.URL(), "opal", "password-opal")

	pg.stop()
	// Pages say so too: 503, come back in a second.
	if resp, _ := get(t, hc, m.URL()+"/console"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the console page during the outage: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	during := newID()
	mustErr(t, c.doID(during, "send_message", map[string]any{"text": "during"}), "unavailable")
	mustErr(t, c.do("get_userdata", map[string]any{"key": "K"}), "unavailable")
	mustErr(t, c.do("typing", map[string]any{"is_typing": true}), "unavailable")
	other := dial(t, m, nil)
	mustErr(t, other.do("start", map[string]any{"username": "Otto"}), "unavailable")

	pg.start()
	// The pool may still hold connections the restart killed: their first use fails, and is
	// unavailable too, until the retry finds a live one.
	var index string
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := c.doID(during, "send_message", map[string]any{"text": "during"})
		if f["ok"] == true {
			index = mustOK(t, f).str("index")
			break
		}
		mustErr(t, f, "unavailable")
		if time.Now().After(deadline) {
			t.Fatal("send_message still unavailable 10 s after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if again := mustOK(t, c.doID(during, "send_message", map[string]any{"text": "during"})); again.str("index") != index {
		t.Fatalf("the same command id was applied twice: index %s, then %s", index, again.str("index"))
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "after"}))
	if c.close != nil {
		t.Fatalf("the connection closed during the outage: %v", c.close)
	}
	evs, err := m.Chat.Transcript(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, ev := range evs {
		if ev.Text != "" && ev.Party != nil {
			texts = append(texts, ev.Text)
		}
	}
	if got := strconv.Quote(joinTexts(texts)); got != strconv.Quote("before|during|after") {
		t.Fatalf("customer messages in the transcript: %s", got)
	}
}

func joinTexts(texts []string) string {
	out := ""
	for i, s := range texts {
		if i > 0 {
			out += "|"
		}
		out += s
	}
	return out
}
