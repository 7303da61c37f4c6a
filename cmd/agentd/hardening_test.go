package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

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

// TestPagesSignedOut (security probe finding 13): an unknown URL is a 404 for everyone (it used
// to ask signed-out users to sign in, as JSON 401), a protected page sends them to the sign-in
// page, and HEAD answers as GET does.
func TestPagesSignedOut(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	do := func(method, path, accept string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, m.URL()+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := httpClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		method, path, accept string
		status               int
		location, typ        string
	}{
		{"GET", "/no-such-page", "text/html", 404, "", "text/html"},
		{"GET", "/no-such-page", "", 404, "", "application/json"},
		{"GET", "/console/no-such-page", "text/html", 404, "", "text/html"},
		{"GET", "/console", "text/html", 303, "/login?next=%2Fconsole", ""},
		{"GET", "/admin/no-such-page", "text/html", 303, "/login?next=%2Fadmin%2Fno-such-page", ""},
		{"HEAD", "/console", "text/html", 303, "/login?next=%2Fconsole", ""},
		{"HEAD", "/console", "", 401, "", "application/json"},
		{"HEAD", "/login", "text/html", 200, "", "text/html"},
		{"HEAD", "/healthz", "", 200, "", "application/json"},
		{"HEAD", "/static/chat-service.js", "", 200, "", "text/javascript"},
		{"HEAD", "/no-such-page", "text/html", 404, "", "text/html"},
	} {
		resp := do(tc.method, tc.path, tc.accept)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.typ) {
			t.Errorf("%s %s (Accept %q): %d %q %q, want %d %q %q", tc.method, tc.path, tc.accept,
				resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"), tc.status, tc.location, tc.typ)
		}
	}
}

// lockedBuffer is a log sink the node and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestClientAbortIsNotAnError (security probe finding 13): a client that hangs up in the middle
// of a request is logged below ERROR; before, anyone could fill the error log with "context
// canceled" by hanging up.
func TestClientAbortIsNotAnError(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	m := startNodeWith(t, newDB(t), func(m *Main) {
		m.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	newAgent(t, m, "abe", 1)
	hc := httpClient(t)
	login(t, hc, m.URL(), "abe", "password-abe")

	// The console page waits on a lock the test holds, and the client gives up meanwhile.
	ctx := context.Background()
	tx, err := m.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `LOCK TABLE services IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, m.URL()+"/console", nil)
	req.Header.Set("Accept", "text/html")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the console page answered while its query was blocked")
	}
	waitFor(t, "the aborted request to be logged", func() bool { return strings.Contains(log.String(), "request aborted by the client") })
	if s := log.String(); strings.Contains(s, "level=ERROR") {
		t.Fatalf("a client's hang-up was logged as an error:\n%s", s)
	}
}

// TestBrowserNoWebCrypto (security probe finding 10): without Web Crypto chat-service.js cannot
// make unguessable ids, so it fails the session as unsupported instead of falling back to
// Math.random; nothing reaches the server.
func TestBrowserNoWebCrypto(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/old": `
Object.defineProperty(window, 'crypto', {value: undefined, configurable: true});
chat.startSession({serverUrl: AGENTD, username: 'Carol'})
	.done(handleSession)
	.fail(function (event) { window.startError = event.error; });
`})
	m := startNode(t, newDB(t), func(c *Config) { c.Addr = addr; c.allowedOrigins = site.URL })
	tab := newTab(t, newBrowser(t))
	browse(t, tab, chromedp.Navigate(site.URL+"/old"))
	poll(t, tab, "start failure", `window.startError !== undefined`)
	if code := eval[string](t, tab, `window.startError.code`); code != "unsupported" {
		t.Fatalf("start failed with %q, want unsupported", code)
	}
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM interactions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d sessions started (%v)", n, err)
	}
}

// clientFrom is httpClient over connections from the local address ip (any 127/8 address is
// this machine), so the server sees a different client address.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	c := httpClient(t)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.Transport = &http.Transport{DialContext: d.DialContext}
	return c
}

// signInFrom posts the sign-in form from c and returns the status.
func signInFrom(t *testing.T, c *http.Client, base, user, pass string) int {
	t.Helper()
	_, page := get(t, c, base+"/login")
	tok := hiddenCSRF.FindStringSubmatch(page)
	if tok == nil {
		t.Fatal("no sign-in form")
	}
	resp, _ := postForm(t, c, base+"/login", url.Values{"_csrf": {tok[1]}, "username": {user}, "password": {pass}})
	return resp.StatusCode
}

// TestSignInCannotBeLockedOut (security probe finding 8): wrong passwords for a user from other
// addresses never make the right password fail from the user's own address, one address guessing
// is throttled, and every failure is audited and counted.
func TestSignInCannotBeLockedOut(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAgent(t, m, "lena", 1)
	base := m.URL()
	// Before, 8 wrong attempts from 8 addresses spent the per-username bucket.
	for i := range 8 {
		if code := signInFrom(t, clientFrom(t, fmt.Sprintf("127.0.8.%d", i+1)), base, "lena", "wrong-guess"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, code)
		}
	}
	if code := signInFrom(t, clientFrom(t, "127.0.9.1"), base, "lena", "password-lena"); code != http.StatusSeeOther {
		t.Fatalf("the right password after failures elsewhere: %d, want 303", code)
	}
	// One address guessing is throttled, for that address only.
	guesser := clientFrom(t, "127.0.10.1")
	codes := map[int]int{}
	for range 8 {
		codes[signInFrom(t, guesser, base, "lena", "wrong-again")]++
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("8 guesses from one address: %v, want 5 401s then 429s", codes)
	}
	if code := signInFrom(t, clientFrom(t, "127.0.9.1"), base, "lena", "password-lena"); code != http.StatusSeeOther {
		t.Fatalf("the right password from the user's address while another address is throttled: %d", code)
	}
	// Failures are audited, with the address, and counted.
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log
		WHERE action = 'session.login_failed' AND target = 'lena' AND details->>'remote_ip' LIKE '127.0.%'`).Scan(&n); err != nil || n != 13 {
		t.Fatalf("%d failed sign-ins audited (%v), want 13", n, err)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`agentd_login_failures_total{reason="bad_credentials"} 13`, `agentd_login_failures_total{reason="throttled"} 3`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

// closedWith waits (up to within) for the server to close ws and returns the close frame's code
// and reason; frames before it are skipped.
func closedWith(t *testing.T, ws *websocket.Conn, within time.Duration) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
				return ce.Code, ce.Text
			}
			t.Fatalf("console not closed within %v: %v", within, err)
		}
	}
}

// TestAccessRevoked (security probe finding 7): a console socket that is already open stops
// working when its account is disabled, its session signs out or expires: within 5 s, on every
// node. Before, an open console kept sending messages 27 s after the account was disabled.
func TestAccessRevoked(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	clock := &testClock{}
	a := startNode(t, db)
	b := startNodeAt(t, db, clock.Now, func(c *Config) { c.Accounts.SessionMaxAge = time.Hour })
	ctx := context.Background()

	t.Run("DisabledByTheCLI", func(t *testing.T) {
		newAgent(t, a, "dora", 1)
		hc := httpClient(t)
		csrf := login(t, hc, a.URL(), "dora", "password-dora")
		onA, onB := consoleWith(t, a, hc, csrf), consoleWith(t, b, hc, csrf)
		var out bytes.Buffer
		if err := runUser(ctx, []string{"disable", "--database-url", db, "--username", "dora"}, &out); err != nil || !strings.Contains(out.String(), `disabled agent "dora"`) {
			t.Fatalf("agentd user disable: %v %q", err, out.String())
		}
		for _, ws := range []*websocket.Conn{onA, onB} {
			if code, reason := closedWith(t, ws, 5*time.Second); code != websocket.ClosePolicyViolation || reason != "account disabled" {
				t.Fatalf("closed with %d %q, want 1008 account disabled", code, reason)
			}
		}
		if resp, _ := get(t, hc, b.URL()+"/console"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the disabled user's session still opens the console: %d", resp.StatusCode)
		}
		if _, err := a.Accounts.Login(ctx, "dora", "password-dora", "test"); err == nil {
			t.Fatal("a disabled user signed in")
		}
		rows := auditRows(t, a, "user.update")
		if len(rows) != 1 || rows[0].Target != "dora" || !strings.Contains(rows[0].Details, `"disabled": {"new": true, "old": false}`) {
			t.Fatalf("audit: %+v", rows)
		}
		// Enabling gives the account back; enabling twice says so and writes nothing.
		out.Reset()
		if err := runUser(ctx, []string{"enable", "--database-url", db, "--username", "DORA"}, &out); err != nil || !strings.Contains(out.String(), `enabled agent "dora"`) {
			t.Fatalf("agentd user enable: %v %q", err, out.String())
		}
		out.Reset()
		if err := runUser(ctx, []string{"enable", "--database-url", db, "--username", "dora"}, &out); err != nil || !strings.Contains(out.String(), "already") {
			t.Fatalf("enable twice: %v %q", err, out.String())
		}
		if _, err := a.Accounts.Login(ctx, "dora", "password-dora", "test"); err != nil {
			t.Fatalf("the enabled user cannot sign in: %v", err)
		}
		if err := runUser(ctx, []string{"disable", "--database-url", db, "--username", "nobody"}, &out); err == nil {
			t.Fatal("disabling an unknown user succeeded")
		}
	})

	t.Run("DisabledOnTheAdminPage", func(t *testing.T) {
		u := newAgent(t, a, "abel", 1)
		root := newAdminUser(t, a, "root", "root-password", agent.RoleAdmin)
		hc := httpClient(t)
		csrf := login(t, hc, a.URL(), "abel", "password-abel")
		ws := consoleWith(t, b, hc, csrf)
		if _, err := a.Admin.UpdateUser(ctx, root, agent.UserChange{ID: u.ID, DisplayName: u.DisplayName, Role: u.Role,
			Capacity: u.Capacity, Services: u.Services, Disabled: true}); err != nil {
			t.Fatal(err)
		}
		if code, reason := closedWith(t, ws, 5*time.Second); code != websocket.ClosePolicyViolation || reason != "account disabled" {
			t.Fatalf("closed with %d %q, want 1008 account disabled", code, reason)
		}
	})

	t.Run("SignedOut", func(t *testing.T) {
		newAgent(t, a, "otis", 1)
		out, other := httpClient(t), httpClient(t)
		csrf := login(t, out, a.URL(), "otis", "password-otis")
		otherCSRF := login(t, other, a.URL(), "otis", "password-otis")
		leaving, staying := consoleWith(t, b, out, csrf), consoleWith(t, b, other, otherCSRF)
		req, _ := http.NewRequest(http.MethodPost, a.URL()+"/logout", nil)
		req.Header.Set("X-CSRF-Token", csrf)
		if resp, err := out.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign out: %v %v", err, resp)
		}
		if code, reason := closedWith(t, leaving, 5*time.Second); code != websocket.ClosePolicyViolation || reason != "session ended" {
			t.Fatalf("closed with %d %q, want 1008 session ended", code, reason)
		}
		// The same agent's console of another session stays open and working.
		if err := staying.WriteJSON(map[string]any{"id": "state-1", "cmd": "set_state", "args": map[string]string{"state": "ready"}}); err != nil {
			t.Fatal(err)
		}
		_ = staying.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var f frame
			if err := staying.ReadJSON(&f); err != nil {
				t.Fatalf("the other session's console: %v", err)
			}
			if f["type"] == "result" && f["id"] == "state-1" {
				mustOK(t, f)
				break
			}
		}
	})

	t.Run("Expired", func(t *testing.T) {
		newAgent(t, a, "ivy", 1)
		hc := httpClient(t)
		csrf := login(t, hc, b.URL(), "ivy", "password-ivy")
		ws := consoleWith(t, b, hc, csrf)
		clock.Advance(time.Hour + time.Minute) // past the session's lifetime on b's clock
		if code, reason := closedWith(t, ws, 6*time.Second); code != websocket.ClosePolicyViolation || reason != "session ended" {
			t.Fatalf("closed with %d %q, want 1008 session ended", code, reason)
		}
	})
}
