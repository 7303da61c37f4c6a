package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"agentd/agent"
	"agentd/chat"
)

// httpClient is a browser-like client: cookies, no automatic redirects.
func httpClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var hiddenCSRF = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func postForm(t testing.TB, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// login signs in through the real form and returns the session's CSRF token.
func login(t testing.TB, c *http.Client, base, user, pass string) string {
	t.Helper()
	_, page := get(t, c, base+"/login")
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("login form has no CSRF field")
	}
	resp, body := postForm(t, c, base+"/login", url.Values{"_csrf": {m[1]}, "username": {user}, "password": {pass}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	_, page = get(t, c, base+"/console")
	m = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("console page has no CSRF token: %s", page)
	}
	return m[1]
}

func TestConsoleAuth(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAgent(t, m, "erin", 2)
	base := m.URL()

	t.Run("ErrNotSignedIn", func(t *testing.T) {
		c := httpClient(t)
		resp, _ := get(t, c, base+"/console")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fconsole" {
			t.Fatalf("GET /console without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, resp2, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/ws/console", nil)
		if err == nil || resp2 == nil || resp2.StatusCode != http.StatusUnauthorized {
			t.Fatalf("console socket without a session: %v %v", err, resp2)
		}
	})

	t.Run("ErrLoginCSRF", func(t *testing.T) {
		c := httpClient(t)
		resp, body := postForm(t, c, base+"/login", url.Values{"_csrf": {"forged"}, "username": {"erin"}, "password": {"password-erin"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "expired") {
			t.Fatalf("login with a forged token: %d", resp.StatusCode)
		}
	})

	t.Run("OK_LoginLogoutCSRF", func(t *testing.T) {
		newAgent(t, m, "fay", 2)
		c := httpClient(t)
		csrf := login(t, c, base, "fay", "password-fay")
		resp, _ := get(t, c, base+"/console")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("console after login: %d", resp.StatusCode)
		}
		resp, _ = get(t, c, base+"/admin")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("agent on /admin: %d", resp.StatusCode)
		}
		resp, _ = postForm(t, c, base+"/logout", url.Values{})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("logout without CSRF: %d", resp.StatusCode)
		}
		resp, _ = postForm(t, c, base+"/logout", url.Values{"_csrf": {"forged"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("logout with forged CSRF: %d", resp.StatusCode)
		}
		resp, _ = postForm(t, c, base+"/logout", url.Values{"_csrf": {csrf}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		resp, _ = get(t, c, base+"/console")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("console after logout: %d", resp.StatusCode)
		}
	})

	t.Run("ErrConsoleSocketOriginAndCSRF", func(t *testing.T) {
		c := httpClient(t)
		login(t, c, base, "erin", "password-erin")
		u, _ := url.Parse(base)
		hdr := http.Header{"Cookie": {cookieHeader(c, u)}, "Origin": {"https://evil.example"}}
		wsURL := strings.Replace(base, "http", "ws", 1) + "/ws/console"
		if _, resp, err := websocket.DefaultDialer.Dial(wsURL, hdr); err == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("console socket from a foreign origin: %v", err)
		}
		hdr.Set("Origin", base)
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, hdr)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"id": "h1", "cmd": "hello", "args": map[string]string{"csrf": "forged"}})
		var res map[string]any
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if err := ws.ReadJSON(&res); err != nil {
				t.Fatalf("no answer to a forged hello: %v", err)
			}
			if res["type"] == "result" {
				break
			}
		}
		if res["ok"] == true || res["error"].(map[string]any)["code"] != "csrf" {
			t.Fatalf("hello with a forged token: %v", res)
		}
		if _, _, err := ws.ReadMessage(); err == nil {
			t.Fatal("socket still open after a forged hello")
		}
	})
}

func cookieHeader(c *http.Client, u *url.URL) string {
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// TestAgentAbsent covers an agent whose console socket drops: after the grace period the agent
// is set offline and the chats only offered to it go back to the queue, while its active chat
// stays with it (documented in docs/console.md).
func TestAgentAbsent(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) {
		c.Router.AbsentGrace = 1500 * time.Millisecond
		c.Router.RouteInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	u := newAgent(t, m, "gus", 2)
	ready(t, m, u)
	_, id1 := acceptedChat(t, m, u, nil)
	_, d2 := startSession(t, m, nil)
	id2 := d2.str("session_id")
	waitOffer(t, m, u, id2)
	// No console heartbeats from now on.
	waitFor(t, "agent set offline", func() bool {
		got, _ := m.Accounts.User(ctx, u.ID)
		return got.State == agent.StateOffline
	})
	in2, _ := m.Chat.Interaction(ctx, id2)
	in1, _ := m.Chat.Interaction(ctx, id1)
	if in2.State != chat.StateQueued || in1.State != chat.StateActive {
		t.Fatalf("after the agent vanished: offered chat %s (want queued), active chat %s (want active)", in2.State, in1.State)
	}
	if a, err := m.Agents.Assignment(ctx, u, id1); err != nil || a.State != agent.AssignActive {
		t.Fatalf("active chat no longer the agent's: %v %v", a.State, err)
	}
}

func TestWrapUpAndSurveyErrors(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved"}, Survey: &agent.Survey{}})
	u := newAgent(t, m, "hal", 2)
	ready(t, m, u)
	c, d := startSession(t, m, map[string]any{"username": `<script>window.x=1</script>Hal's customer`, "user_data": map[string]any{"Note": `<img src=x onerror=alert(1)>`}})
	id := d.str("session_id")
	acceptOffer(t, m, u, id)
	// Wrap-up before the end, then with a disposition that is not in the list.
	wantCode(t, m.Agents.WrapUp(ctx, u, id, "Resolved", ""), "invalid_state")
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	wantCode(t, m.Agents.WrapUp(ctx, u, id, "Made up", ""), "invalid_disposition")
	if err := m.Agents.WrapUp(ctx, u, id, "", "optional disposition"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, m.Agents.WrapUp(ctx, u, id, "", ""), "not_your_chat")

	// The survey link was attached when routed; a forged token is refused.
	surveyURL := mustOK(t, c.do("get_userdata", map[string]any{"key": "SurveyURL"})).str("user_data", "SurveyURL")
	if !strings.Contains(surveyURL, "/survey/") {
		t.Fatalf("SurveyURL %q", surveyURL)
	}
	hc := httpClient(t)
	resp, _ := get(t, hc, m.URL()+"/survey/forged-token-123")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("forged survey token: %d", resp.StatusCode)
	}
	_, page := get(t, hc, surveyURL)
	tok := hiddenCSRF.FindStringSubmatch(page)
	if tok == nil {
		t.Fatal("survey form has no CSRF field")
	}
	resp, _ = postForm(t, hc, surveyURL, url.Values{"_csrf": {"forged"}, "q.CSAT": {"4"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("survey with a forged CSRF token: %d", resp.StatusCode)
	}
	resp, page = postForm(t, hc, surveyURL, url.Values{"_csrf": {tok[1]}, "q.CSAT": {"9"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "choose a value from 1 to 5") {
		t.Fatalf("out-of-range CSAT: %d", resp.StatusCode)
	}
	resp, _ = postForm(t, hc, surveyURL, url.Values{"_csrf": {tok[1]}, "q.CSAT": {"4"}, "q.Comment": {"<script>bad()</script>"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("survey answer: %d", resp.StatusCode)
	}
	if udValue(m, id, "Survey.CSAT") != `"4"` {
		t.Fatalf("Survey.CSAT = %s", udValue(m, id, "Survey.CSAT"))
	}
	resp, _ = postForm(t, hc, surveyURL, url.Values{"_csrf": {tok[1]}, "q.CSAT": {"1"}})
	if resp.StatusCode != http.StatusConflict || udValue(m, id, "Survey.CSAT") != `"4"` {
		t.Fatalf("second answer: %d, CSAT %s", resp.StatusCode, udValue(m, id, "Survey.CSAT"))
	}

	// Hostile names, UserData and survey text are escaped in the history page.
	ac := httpClient(t)
	login(t, ac, m.URL(), "hal", "password-hal")
	resp, page = get(t, ac, m.URL()+"/console/history/"+id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("history: %d", resp.StatusCode)
	}
	for _, raw := range []string{"<script>window.x=1</script>", "<img src=x onerror=alert(1)>", "<script>bad()</script>"} {
		if strings.Contains(page, raw) {
			t.Fatalf("history page contains unescaped %q", raw)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;bad()&lt;/script&gt;") {
		t.Fatal("survey comment missing from history")
	}
	// Another agent cannot read this chat's history.
	newAgent(t, m, "ivy", 1)
	oc := httpClient(t)
	login(t, oc, m.URL(), "ivy", "password-ivy")
	if resp, _ := get(t, oc, m.URL()+"/console/history/"+id); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("other agent reading history: %d", resp.StatusCode)
	}
}

// TestBrowserConsoleTwoTabs: one agent, two tabs; what one tab does shows in the other. Also the
// unread mark and the pending-response indicator.
func TestBrowserConsoleTwoTabs(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{PendingWarnSeconds: 1, PendingLateSeconds: 2})
	u := newAgent(t, m, "jo", 3)
	browser := newBrowser(t)
	tab1 := newTab(t, browser)
	consoleFor(t, tab1, m.URL(), "jo")
	// The second tab signs in too (its own browser context keeps the two pages independent).
	tab2 := newTab(t, browser)
	consoleFor(t, tab2, m.URL(), "jo")

	click(t, tab1, `#presence button[data-state=ready]`)
	poll(t, tab2, "ready in the other tab", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)
	c1, d1 := startSession(t, m, map[string]any{"username": "First"})
	id1 := d1.str("session_id")
	poll(t, tab2, "offer in tab 2", `!!document.getElementById('offer-`+id1+`')`)
	click(t, tab1, `#offer-`+id1+` button[data-cmd=accept]`)
	poll(t, tab2, "offer gone and chat shown in tab 2", `!document.getElementById('offer-`+id1+`') && !!document.getElementById('item-`+id1+`')`)
	if _, err := m.Agents.Accept(ctx, u, id1); err == nil {
		t.Fatal("accepted the same chat twice")
	}

	// Pending response: warn after 1 s, late after 2 s, cleared by the agent's answer.
	mustOK(t, c1.do("send_message", map[string]any{"text": "Anyone there?"}))
	poll(t, tab1, "pending late", `document.getElementById('item-`+id1+`')?.classList.contains('pending-late')`)
	browse(t, tab1, chromedp.SendKeys(chromedp.ID("message-"+id1), "Yes, here!\n"))
	poll(t, tab1, "pending cleared", `!document.getElementById('item-`+id1+`').classList.contains('pending-late') && document.getElementById('item-`+id1+`').dataset.pendingSince === '0'`)
	c1.waitEvent("answer", func(ev frame) bool { return ev.str("content", "text") == "Yes, here!" })

	// Canned responses, searched as the agent types, fill the composer.
	if _, err := m.DB.Pool.Exec(ctx, `INSERT INTO canned_responses (title, body) VALUES ('Greeting', 'Hello! How can I help you today?'), ('Goodbye', 'Thanks for chatting!')`); err != nil {
		t.Fatal(err)
	}
	browse(t, tab1, chromedp.SendKeys(chromedp.ID("canned-q-"+id1), "greet"))
	poll(t, tab1, "canned result", `document.querySelectorAll('#canned-`+id1+` button').length === 1`)
	click(t, tab1, `#canned-`+id1+` button`)
	if got := eval[string](t, tab1, `document.getElementById('message-`+id1+`').value`); got != "Hello! How can I help you today?" {
		t.Fatalf("canned response inserted %q", got)
	}

	// Custom notices both ways.
	mustOK(t, c1.do("send_notice", map[string]any{"payload": map[string]any{"page": "/checkout"}}))
	poll(t, tab1, "customer notice", `document.getElementById('notices-`+id1+`')?.textContent.includes('/checkout')`)
	browse(t, tab1, chromedp.SendKeys(chromedp.ID("notice-"+id1), "Your order shipped"))
	click(t, tab1, `#chat-`+id1+` form[data-form=send_notice] button[type=submit]`)
	c1.waitFrame("agent notice", func(f frame) bool { return f["type"] == "notice" && f.str("payload", "text") == "Your order shipped" })

	// Co-browse without a provider: the panel opens, says so and shows the id.
	mustOK(t, c1.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-9"}}))
	poll(t, tab1, "co-browse without provider", `(t => t.includes('No co-browse provider is configured') && t.includes('CB-9'))(document.getElementById('cobrowse-`+id1+`')?.textContent || '')`)

	// A second chat: messages in the chat not shown get an unread mark.
	c2, d2 := startSession(t, m, map[string]any{"username": "Second"})
	id2 := d2.str("session_id")
	click(t, tab1, `#offer-`+id2+` button[data-cmd=accept]`)
	poll(t, tab1, "second chat", `!!document.getElementById('chat-`+id2+`')`)
	click(t, tab1, `#item-`+id1)
	mustOK(t, c2.do("send_message", map[string]any{"text": "Hello from the second"}))
	poll(t, tab1, "unread mark", `document.getElementById('item-`+id2+`')?.classList.contains('has-unread')`)
	click(t, tab1, `#item-`+id2)
	poll(t, tab1, "read", `!document.getElementById('item-`+id2+`').classList.contains('has-unread')`)

	// UserData with markup stays text in the console.
	mustOK(t, c2.do("update_userdata", map[string]any{"user_data": map[string]any{"Evil": `<img src=x onerror="window.pwned=1">`}}))
	poll(t, tab1, "hostile UserData shown as text", `document.querySelector('#ud-`+id2+` tr[data-key="Evil"] .value')?.textContent === '<img src=x onerror="window.pwned=1">'`)
	if eval[bool](t, tab1, `window.pwned === 1`) {
		t.Fatal("UserData value executed in the console")
	}
	// Deleting a key from the panel.
	click(t, tab1, `#ud-`+id2+` button[data-cmd=delete_userdata][data-key="Evil"]`)
	poll(t, tab1, "key deleted", `document.querySelector('#ud-`+id2+` tr[data-key="Evil"]') === null`)
	if udValue(m, id2, "Evil") != "" {
		t.Fatal("key still in UserData after Delete")
	}
}

// TestLoginRateLimit has a node of its own: the limit is per address, and every test client is
// 127.0.0.1.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	newAgent(t, m, "erin", 2)
	base := m.URL()
	c := httpClient(t)
	_, page := get(t, c, base+"/login")
	codes := map[int]int{}
	for range 8 {
		tok := hiddenCSRF.FindStringSubmatch(page)[1]
		var resp *http.Response
		resp, page = postForm(t, c, base+"/login", url.Values{"_csrf": {tok}, "username": {"erin"}, "password": {"nope-nope"}})
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusUnauthorized && !strings.Contains(page, "Wrong username or password.") {
			t.Fatal("wrong password page has no clear message")
		}
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("8 wrong passwords answered %v: want 401s then 429s", codes)
	}
}
