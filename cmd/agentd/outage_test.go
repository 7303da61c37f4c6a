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

	"github.com/chromedp/chromedp"

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

// TestBrowserSendsThroughDatabaseRestart: a page sends a message every 40 ms while the database
// restarts under the node (down for a second). Every sendMessage succeeds, none fails, and the
// transcript holds every message once, in the order the page sent them: chat-service.js sends
// each command answered unavailable again, with its id, after a backoff, before any later one.
// Before, the library failed them to the page with the server's code.
func TestBrowserSendsThroughDatabaseRestart(t *testing.T) {
	t.Parallel()
	const total = 60
	pg, dbURL := privateCluster(t)
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/chat": `
window.results = [];
chat.startSession({serverUrl: AGENTD, username: 'Olga'}).done(function (session) {
	handleSession(session);
	var n = 0;
	var timer = setInterval(function () {
		var i = n++;
		if (i >= ` + strconv.Itoa(total) + `) { clearInterval(timer); return; }
		session.sendMessage('m' + i)
			.done(function (e) { window.results[i] = 'done'; })
			.fail(function (e) { window.results[i] = 'fail ' + e.error.code; });
	}, 40);
}).fail(function (e) { window.startError = e.error; });
`})
	m := startNode(t, dbURL, func(c *Config) { c.Addr = addr; c.allowedOrigins = site.URL })
	tab := newTab(t, newBrowser(t))
	browse(t, tab, chromedp.Navigate(site.URL+"/chat"))
	poll(t, tab, "the first messages sent", `window.results.filter(r => r === 'done').length >= 5`)

	pg.stop()
	time.Sleep(time.Second)
	pg.start()
	poll(t, tab, "every sendMessage settled", `Object.keys(window.results).length === `+strconv.Itoa(total))
	if failed := eval[string](t, tab, `window.results.map((r, i) => r === 'done' ? '' : 'm' + i + ': ' + r).filter(Boolean).join(', ')`); failed != "" {
		t.Fatalf("sendMessage failed to the page: %s", failed)
	}
	if errs := eval[string](t, tab, `JSON.stringify(window.log.filter(l => l.kind === 'error'))`); errs != "[]" {
		t.Fatalf("onError fired: %s", errs)
	}
	id := eval[string](t, tab, `window.session.sessionId`)
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
	var want []string
	for i := range total {
		want = append(want, "m"+strconv.Itoa(i))
	}
	if got := joinTexts(texts); got != joinTexts(want) {
		t.Fatalf("the transcript holds\n%s\nwant\n%s", got, joinTexts(want))
	}
}

// TestBrowserRetryKeepsOrder: the page sends three messages at once, and the database fails the
// second one's transaction twice (an injected serialization failure, answered unavailable) but
// not the third's. The second is sent again before the third, so the transcript keeps the page's
// order. A library that pipelined its commands (as it did) would retry the second after the
// third had been applied.
func TestBrowserRetryKeepsOrder(t *testing.T) {
	t.Parallel()
	dbURL := newDB(t)
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/chat": `
window.results = {};
chat.startSession({serverUrl: AGENTD, username: 'Rhea'}).done(function (session) {
	handleSession(session);
	['first', 'second', 'third'].forEach(function (text) {
		session.sendMessage(text)
			.done(function () { window.results[text] = 'done'; })
			.fail(function (e) { window.results[text] = 'fail ' + e.error.code; });
	});
}).fail(function (e) { window.startError = e.error; });
`})
	m := startNode(t, dbURL, func(c *Config) { c.Addr = addr; c.allowedOrigins = site.URL })
	// A sequence is not rolled back with the transaction that advanced it: the first two
	// attempts to append "second" fail, the third succeeds.
	if _, err := m.DB.Pool.Exec(context.Background(), `
		CREATE SEQUENCE second_attempts;
		CREATE FUNCTION fail_second() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.text = 'second' AND nextval('second_attempts') <= 2 THEN
				RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER fail_second BEFORE INSERT ON transcript_events FOR EACH ROW EXECUTE FUNCTION fail_second();`); err != nil {
		t.Fatal(err)
	}
	tab := newTab(t, newBrowser(t))
	browse(t, tab, chromedp.Navigate(site.URL+"/chat"))
	poll(t, tab, "every sendMessage settled", `Object.keys(window.results).length === 3`)
	if got := eval[string](t, tab, `JSON.stringify(window.results)`); got != `{"first":"done","second":"done","third":"done"}` {
		t.Fatalf("results: %s", got)
	}
	var attempts int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT last_value FROM second_attempts`).Scan(&attempts); err != nil || attempts != 3 {
		t.Fatalf("second was attempted %d times (%v), want 3", attempts, err)
	}
	id := eval[string](t, tab, `window.session.sessionId`)
	evs, err := m.Chat.Transcript(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, ev := range evs {
		if ev.Kind == "message" {
			texts = append(texts, ev.Text)
		}
	}
	if got := joinTexts(texts); got != "first|second|third" {
		t.Fatalf("the transcript holds %s, want first|second|third", got)
	}
}
