package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/chat"
	"agentd/userdata"
)

// Browser tests drive Debian's chromium (make test installs it) through chromedp against real
// nodes. Pages that embed chat-service.js are served by a second HTTP server, so the library is
// exercised cross-origin, as on a customer's website.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found: install it (make test does: scripts/ensure-deps.sh --chromium)")
	return ""
}

// newBrowser starts a headless browser for the test and returns the context of its first tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser on a context without timeout
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// browse runs actions with a deadline.
func browse(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// poll waits until expr is truthy in the page. It keeps waiting across a navigation (a form
// submit, a reload), when the page under the poll goes away.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		// An exception (an element not there yet) counts as "not yet", not as a failure.
		guarded := "(() => { try { return (" + expr + "); } catch (e) { return false; } })()"
		_, err := chromedp.Run(pctx, chromedp.Poll[chromedp.Void](guarded, chromedp.WithPollingInterval(25*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().Before(deadline) && (strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "context was destroyed") ||
			strings.Contains(err.Error(), "Cannot find context")) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		log, _ := chromedp.Run(lctx, chromedp.Evaluate[string](`JSON.stringify(window.log || null)`))
		cancel()
		t.Fatalf("waiting for %s (%s): %v\npage log: %s", what, expr, err, log)
	}
}

// sitePages serves test pages that embed chat-service.js from the agentd node at agentdURL.
func sitePages(t *testing.T, agentdURL string, pages map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script src="%s/static/chat-service.js"></script></head><body><script>
var AGENTD = %q;
window.log = [];
function record(kind) { return function (e) { window.log.push({kind: kind, e: JSON.parse(JSON.stringify(e))}); }; }
function handleSession(session) {
	window.session = session;
	session.onAgentConnected(record('agentConnected'));
	session.onAgentDisconnected(record('agentDisconnected'));
	session.onMessageReceived(record('message'));
	session.onAgentTyping(record('typing'));
	session.onSessionEnded(record('ended'));
	session.onError(record('error'));
	session.onNotice(record('notice'));
	session.onUserDataUpdated(record('userdata'));
	session.onQueuePosition(record('queue'));
	window.ready = true;
}
%s
</script></body></html>`, agentdURL, agentdURL, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// seedFlow is the seed page's example: restore the session of a previous page, or start one.
const seedFlow = `
chat.restoreSession()
	.done(handleSession)
	.fail(function (event) {
		window.restoreFailed = event;
		if (event.error) {
			// Session has been started on previous page, but failed to restore.
			window.restoreError = event.error;
		} else {
			// If there is no session to continue, start a new chat session.
			chat.startSession({serverUrl: AGENTD, username: 'Carol', userData: {FirstName: 'Carol'}})
				.done(handleSession)
				.fail(function (event) { window.startError = event.error; });
		}
	});
`

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestBrowserSeedExamples(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addr := freeAddr(t)
	var site *httptest.Server
	siteOrigin := func(c *Config) {
		c.Addr = addr
		c.allowedOrigins = site.URL
	}
	agentdURL := "http://" + addr
	site = sitePages(t, agentdURL, map[string]string{
		"/seed": seedFlow,
		"/storage": `
function getCookie(name) {
	var m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
	return m ? decodeURIComponent(m[1]) : null;
}
function setCookie(name, value) { document.cookie = name + '=' + encodeURIComponent(value) + '; path=/'; }
window.writes = 0;
var myStateStorage = {
	write: function (state) {
		window.writes++;
		setCookie('chatSessionState', JSON.stringify(state));
	},
	read: function () {
		return JSON.parse(getCookie('chatSessionState'));
	}
};
chat.restoreSession({serverUrl: AGENTD, stateStorage: myStateStorage})
	.done(handleSession)
	.fail(function (event) {
		window.restoreFailed = event;
		chat.startSession({serverUrl: AGENTD, username: 'Stan', stateStorage: myStateStorage}).done(handleSession);
	});
`,
	})
	m := startNode(t, db, siteOrigin)
	ctx := context.Background()
	b := newBrowser(t)

	// 1. Nothing to restore: fail without error, then start.
	browse(t, b, chromedp.Navigate(site.URL+"/seed"))
	poll(t, b, "session started", `window.ready === true`)
	if eval[bool](t, b, `'error' in window.restoreFailed`) {
		t.Fatal("restoreSession with nothing stored failed with an error")
	}
	id := eval[string](t, b, `window.session.sessionId`)
	poll(t, b, "queue position", `window.log.some(l => l.kind === 'queue' && l.e.position === 1)`)

	// 2. Messages to and from an agent driven through the Go API.
	agent := agentJoin(t, m, id)
	poll(t, b, "onAgentConnected", `window.log.some(l => l.kind === 'agentConnected' && l.e.party.type.agent === true && l.e.party.name === 'Alice' && l.e.restored === false)`)
	if _, err := m.Chat.Send(ctx, agent, "", "Hello from the agent", ""); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "agent message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'Hello from the agent' && l.e.party.type.agent && typeof l.e.index === 'number' && l.e.timestamp > 0)`)
	eval[bool](t, b, `new Promise(r => window.session.sendMessage('Hi there').done(e => { window.sent = e; r(true); }))`)
	if eval[float64](t, b, `window.sent.timestamp`) <= 0 {
		t.Fatal("sendMessage done event has no timestamp")
	}
	evs, _ := m.Chat.Transcript(ctx, id, 0, 0)
	if last := evs[len(evs)-1]; last.Text != "Hi there" || last.Party.Type != chat.PartyClient {
		t.Fatalf("agent side sees %+v", last)
	}
	if _, err := m.Chat.SendTyping(ctx, agent, true, "typing…"); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "onAgentTyping", `window.log.some(l => l.kind === 'typing' && l.e.isTyping === true)`)

	// 3. The Extended API: updateUserData / getUserData('FirstName') / deleteUserData('FirstName').
	eval[bool](t, b, `new Promise((resolve, reject) => window.session.updateUserData({
		FirstName: 'John', LastName: 'Doe', MySpecialProperty: 'foobar'
	}).done(function () { resolve(true); }).fail(function (event) { reject(event.error.code); }))`)
	if got := eval[string](t, b, `new Promise(r => window.session.getUserData('FirstName').done(e => r(e.userData.FirstName)))`); got != "John" {
		t.Fatalf("getUserData('FirstName') = %q", got)
	}
	eval[bool](t, b, `new Promise(r => window.session.deleteUserData('FirstName').done(() => r(true)))`)
	if eval[bool](t, b, `new Promise(r => window.session.getUserData('FirstName').done(e => r('FirstName' in e.userData)))`) {
		t.Fatal("FirstName still readable after deleteUserData")
	}
	if _, err := m.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "AgentOnly", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	code := eval[string](t, b, `new Promise(r => window.session.updateUserData({AgentOnly: 'mine'})
		.done(() => r('done'))
		.fail(function (event) { r(event.error.code + (event.error.description ? '' : ' without description')); }))`)
	if code != "userdata_forbidden" {
		t.Fatalf("updating someone else's key: %s", code)
	}
	hist, _ := m.Chat.UserDataHistory(ctx, id)
	var keys []string
	for _, h := range hist {
		keys = append(keys, string(h.Op)+":"+h.Key)
	}
	if want := "set:FirstName set:FirstName set:LastName set:MySpecialProperty delete:FirstName set:AgentOnly"; strings.Join(keys, " ") != want {
		t.Fatalf("history %s", strings.Join(keys, " "))
	}

	// 4. Reload: the session is restored, earlier events come back marked restored, none twice.
	browse(t, b, chromedp.Reload())
	poll(t, b, "restored session", `window.ready === true`)
	if eval[string](t, b, `window.session.sessionId`) != id || eval[bool](t, b, `window.restoreFailed !== undefined`) {
		t.Fatal("reload did not restore the same session")
	}
	poll(t, b, "replayed agent message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'Hello from the agent')`)
	if _, err := m.Chat.Send(ctx, agent, "", "After the reload", ""); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "new message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'After the reload' && l.e.restored === false)`)
	checkNoDuplicates(t, b)
	if !eval[bool](t, b, `window.log.filter(l => l.kind === 'message' && l.e.content.text === 'Hello from the agent').every(l => l.e.restored === true)`) {
		t.Fatal("events from before the reload are not marked restored")
	}

	// 5. The server restarts: the library reconnects and resumes, without duplicates.
	_ = m.Close()
	m2 := startNode(t, db, siteOrigin)
	if _, err := m2.Chat.Send(ctx, agent, "", "After the restart", ""); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "message after restart", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'After the restart')`)
	eval[bool](t, b, `new Promise(r => window.session.sendMessage('Still here').done(() => r(true)))`)
	checkNoDuplicates(t, b)

	// 6. The agent ends the chat: onSessionEnded; SurveyURL still readable afterwards.
	visible := true
	if _, err := m2.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "SurveyURL", Value: "https://survey.example/s/1", Visible: &visible}}); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "onUserDataUpdated", `window.log.some(l => l.kind === 'userdata' && l.e.userData.SurveyURL === 'https://survey.example/s/1')`)
	if err := m2.Chat.End(ctx, agent); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "onSessionEnded", `window.log.some(l => l.kind === 'ended' && l.e.reason.agent === true)`)
	if got := eval[string](t, b, `new Promise(r => window.session.getUserData('SurveyURL').done(e => r(e.userData.SurveyURL)).fail(e => r('fail ' + e.error.code)))`); got != "https://survey.example/s/1" {
		t.Fatalf("SurveyURL after the end: %s", got)
	}

	// 7. Custom stateStorage: the page's own storage is written and used to restore.
	browse(t, b, chromedp.Navigate(site.URL+"/storage"))
	poll(t, b, "started with stateStorage", `window.ready === true && window.writes > 0`)
	sid := eval[string](t, b, `window.session.sessionId`)
	if !eval[bool](t, b, `JSON.parse(getCookie('chatSessionState')).sessionId === window.session.sessionId`) {
		t.Fatal("stateStorage.write did not receive the session")
	}
	browse(t, b, chromedp.Reload())
	poll(t, b, "restored from stateStorage", `window.ready === true`)
	if eval[string](t, b, `window.session.sessionId`) != sid || eval[bool](t, b, `window.restoreFailed !== undefined`) {
		t.Fatal("custom stateStorage did not restore the session")
	}
}

func checkNoDuplicates(t *testing.T, b context.Context) {
	t.Helper()
	dups := eval[string](t, b, `(function () {
		var seen = {}, dups = [];
		window.log.forEach(function (l) {
			if (typeof l.e.index !== 'number') return;
			var k = l.kind + ':' + l.e.index;
			if (seen[k]) dups.push(k);
			seen[k] = true;
		});
		return dups.join(',');
	})()`)
	if dups != "" {
		t.Fatalf("events delivered twice: %s", dups)
	}
}

// TestBrowserDemoPage uses the demo widget as a person would: keyboard and clicks only.
func TestBrowserDemoPage(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	b := newBrowser(t)

	browse(t, b,
		chromedp.Navigate(m.URL()+"/demo"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Dora <script>"),
		chromedp.SendKeys(chromedp.ID("subject"), "Order 42"),
		chromedp.Click(chromedp.ID("start")),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	var id string
	waitFor(t, "interaction in Postgres", func() bool {
		_ = m.DB.Pool.QueryRow(ctx, `SELECT id FROM interactions WHERE customer_name = 'Dora <script>'`).Scan(&id)
		return id != ""
	})
	browse(t, b,
		chromedp.SendKeys(chromedp.ID("message"), "Where is my order?"),
		chromedp.Click(chromedp.ID("send")),
	)
	poll(t, b, "own message shown", `[...document.querySelectorAll('#transcript li')].some(li => li.textContent.includes('Where is my order?'))`)
	agent := agentJoin(t, m, id)
	xss := `<img src=x onerror="window.pwned=1">Shipped today`
	if _, err := m.Chat.Send(ctx, agent, "", xss, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "agent message shown as text", `[...document.querySelectorAll('#transcript li')].some(li => li.textContent.includes('<img src=x onerror="window.pwned=1">Shipped today'))`)
	if eval[bool](t, b, `window.pwned === 1 || document.querySelector('#transcript img') !== null`) {
		t.Fatal("agent message was rendered as HTML")
	}
	if _, err := m.Chat.SendNotice(ctx, agent, "", []byte(`{"text":"Agent joined co-browse"}`)); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "notice shown", `document.getElementById('notices').textContent.includes('co-browse')`)

	browse(t, b,
		chromedp.SendKeys(chromedp.ID("cobrowse-id"), "CB-778899"),
		chromedp.Click(chromedp.ID("cobrowse-share")),
	)
	waitFor(t, "CoBrowseSessionId in UserData", func() bool {
		v, ok, _ := m.Chat.CustomerUserData(ctx, id, "CoBrowseSessionId")
		return ok && string(v) == `"CB-778899"`
	})

	screenshot(t, b, "demo-page.png")
	checkLabels(t, b, "demo page")
	checkAxe(t, b, "demo page")

	// A reload shows the same conversation, each message once.
	browse(t, b, chromedp.Reload())
	poll(t, b, "transcript after reload", `[...document.querySelectorAll('#transcript li')].some(li => li.textContent.includes('Shipped today'))`)
	if n := eval[int](t, b, `[...document.querySelectorAll('#transcript li')].filter(li => li.textContent.includes('Where is my order?')).length`); n != 1 {
		t.Fatalf("customer message shown %d times after reload", n)
	}

	browse(t, b, chromedp.Click(chromedp.ID("leave")))
	waitFor(t, "session abandoned or ended", func() bool {
		in, _ := m.Chat.Interaction(ctx, id)
		return in.State.Over()
	})
}

// checkLabels fails the test when a visible control of the page has no accessible name: a
// <label>, aria-label or aria-labelledby for fields, text or aria-label for buttons and links.
func checkLabels(t *testing.T, tab context.Context, page string) {
	t.Helper()
	missing := eval[string](t, tab, `(() => {
		const named = (el) => {
			if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return true;
			if (el.matches('button, a')) return el.textContent.trim() !== '';
			if (el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) return true;
			return !!el.closest('label');
		};
		return [...document.querySelectorAll('button, a[href], input:not([type=hidden]), select, textarea')]
			.filter((el) => el.getClientRects().length > 0 && !named(el))
			.map((el) => el.outerHTML.slice(0, 80)).join('\n');
	})()`)
	if missing != "" {
		t.Fatalf("%s: controls without an accessible name:\n%s", page, missing)
	}
}
