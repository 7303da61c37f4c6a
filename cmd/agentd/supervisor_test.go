package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/agent"
)

// The XSS strings of the supervisor tests: each an element with an id, which must never exist in
// the page (it is shown as text).
const (
	supXSSName    = `Eve <b id="xss-name">bold</b>`
	supXSSMessage = `Hi <img id="xss-msg" src=x onerror="window.pwned=1">`
	supXSSKey     = `Key<b id="xss-key">k</b>`
	supXSSValue   = `<b id="xss-value">v</b>`
	supXSSNotes   = `Solved <b id="xss-notes">n</b>`
)

// reviewedChat drives one whole chat on m: messages, UserData set and deleted, a co-browse
// session requested and joined, a notice, an end, a wrap-up and a survey answer. It returns the
// agent and the interaction id.
func reviewedChat(t *testing.T, m *Main) (agent.User, string) {
	t.Helper()
	setStrategy(t, m, "default", agent.Strategy{Survey: &agent.Survey{When: "ended"}})
	u := newAgent(t, m, "olga", 2)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, map[string]any{"username": supXSSName})
	ctx := context.Background()
	mustOK(t, c.do("send_message", map[string]any{"text": supXSSMessage}))
	if _, err := m.Agents.Send(ctx, u, id, "console:m1", "Hi, how can I help?"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-42", "Plan": "gold", supXSSKey: supXSSValue}}))
	mustOK(t, c.do("delete_userdata", map[string]any{"key": "Plan"}))
	mustOK(t, c.do("send_notice", map[string]any{"payload": map[string]any{"type": "custom", "html": `<b id="xss-notice">n</b>`}}))
	if err := m.Agents.CoBrowseJoined(ctx, u, id, "CB-42"); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, u, id, "", supXSSNotes); err != nil {
		t.Fatal(err)
	}
	survey := strings.Trim(strings.Fields(readChat(t, m, id).UserData["SurveyURL"])[0], `"`)
	if err := m.Surveys.SubmitSurvey(ctx, survey[strings.LastIndex(survey, "/")+1:], map[string]string{"CSAT": "5"}); err != nil {
		t.Fatal(err)
	}
	return u, id
}

// signInAt signs in through the form and returns where sign-in sent the user.
func signInAt(t *testing.T, c *http.Client, base, user, pass string) string {
	t.Helper()
	_, page := get(t, c, base+"/login")
	tok := hiddenCSRF.FindStringSubmatch(page)
	if tok == nil {
		t.Fatal("no sign-in form")
	}
	resp, body := postForm(t, c, base+"/login", url.Values{"_csrf": {tok[1]}, "username": {user}, "password": {pass}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d %s", user, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func supervisorViews(t *testing.T, m *Main, id, username string) int {
	t.Helper()
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.user_id
		WHERE a.action = 'supervisor.view' AND a.target = $1 AND u.username = $2`, id, username).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSupervisorRoles: an agent gets 403 on both supervisor routes, anonymous is sent to sign in,
// a supervisor lands on /supervisor and an admin on /admin, both may open both routes, and the
// header links Supervisor for them and not for an agent.
func TestSupervisorRoles(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	_, id := reviewedChat(t, m)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	newAdminUser(t, m, "root", "root-password", agent.RoleAdmin)
	base := m.URL()
	routes := []string{"/supervisor", "/supervisor/interactions/" + id}

	anon := httpClient(t)
	for _, r := range routes {
		resp, _ := get(t, anon, base+r)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next="+url.QueryEscape(r) {
			t.Fatalf("anonymous %s: %d to %q, want 303 to sign-in", r, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	ag := httpClient(t)
	if to := signInAt(t, ag, base, "olga", "password-olga"); to != "/console" {
		t.Fatalf("agent landed on %q, want /console", to)
	}
	for _, r := range routes {
		if resp, body := get(t, ag, base+r); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("agent %s: %d, want 403: %.200s", r, resp.StatusCode, body)
		}
	}
	// Every supervisor route the router has, sockets included (their handshake is refused before
	// the upgrade), so a route added later cannot be left open to agents.
	param := regexp.MustCompile(`:[a-z]+`)
	n := 0
	for _, route := range m.Server.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if method != http.MethodGet || !strings.HasPrefix(path, "/supervisor") {
			continue
		}
		path = param.ReplaceAllString(path, id)
		if resp, body := get(t, anon, base+path); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("anonymous %s: %d, want 303 to sign-in: %.200s", path, resp.StatusCode, body)
		}
		if resp, body := get(t, ag, base+path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("agent %s: %d, want 403: %.200s", path, resp.StatusCode, body)
		}
		n++
	}
	if n < 7 {
		t.Fatalf("only %d supervisor routes checked", n)
	}
	if _, page := get(t, ag, base+"/console"); strings.Contains(page, `href="/supervisor"`) {
		t.Fatal("the agent's header links Supervisor")
	}
	if n := supervisorViews(t, m, id, "olga"); n != 0 {
		t.Fatalf("the agent's refused view was audited %d times", n)
	}

	for _, who := range []struct{ user, pass, landing string }{{"sam", "sam-password", "/supervisor"}, {"root", "root-password", "/admin"}} {
		c := httpClient(t)
		if to := signInAt(t, c, base, who.user, who.pass); to != who.landing {
			t.Fatalf("%s landed on %q, want %s", who.user, to, who.landing)
		}
		for _, r := range routes {
			resp, body := get(t, c, base+r)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<a href="/supervisor">Supervisor</a>`) {
				t.Fatalf("%s %s: %d (want 200 with the Supervisor link): %.300s", who.user, r, resp.StatusCode, body)
			}
		}
		_, admin := get(t, c, base+"/admin")
		if hasAdmin := strings.Contains(admin, `<a href="/admin">Admin</a>`); hasAdmin != (who.user == "root") {
			t.Fatalf("%s: header links Admin = %v", who.user, hasAdmin)
		}
		if n := supervisorViews(t, m, id, who.user); n != 1 {
			t.Fatalf("%s's view audited %d times, want 1", who.user, n)
		}
	}
}

// TestSupervisorReview: /supervisor lists the chat and links it; its review shows every
// section's data, escaped; opening it writes the supervisor.view audit row that the Audit section
// then shows; unknown and malformed ids are answered 404, a malformed id in the Open form 400.
func TestSupervisorReview(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	_, id := reviewedChat(t, m)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	base := m.URL()
	c := httpClient(t)
	signInAt(t, c, base, "sam", "sam-password")

	_, home := get(t, c, base+"/supervisor")
	for _, want := range []string{"<h1>Supervisor</h1>", `<label for="open-id">Interaction id</label>`, ">Open</button>",
		`<a href="/supervisor/interactions/` + id + `">Eve &lt;b id=&#34;xss-name&#34;&gt;bold&lt;/b&gt;</a>`,
		"<td>default</td>", "<td>wrapped</td>", "<td>olga</td>"} {
		if !strings.Contains(home, want) {
			t.Fatalf("/supervisor lacks %s:\n%s", want, home)
		}
	}

	resp, page := get(t, c, base+"/supervisor/interactions/"+strings.ToUpper(id))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("review: %d %s", resp.StatusCode, page)
	}
	// Each heading, then what its section must show.
	sections := []struct {
		heading string
		wants   []string
	}{
		{"Transcript", []string{"Hi &lt;img id=&#34;xss-msg&#34;", "Hi, how can I help?", "Agent olga"}},
		{"UserData", []string{"<td>CoBrowseSessionId</td><td class=\"notes\">CB-42</td><td>client</td><td>visible to the customer</td>",
			"<td>Key&lt;b id=&#34;xss-key&#34;&gt;k&lt;/b&gt;</td><td class=\"notes\">&lt;b id=&#34;xss-value&#34;&gt;v&lt;/b&gt;</td>"}},
		{"UserData history", []string{"<td>Plan</td><td>delete</td><td class=\"notes\">gold → </td>", "<td>Plan</td><td>set</td><td class=\"notes\"> → gold</td>"}},
		{"Notices", []string{"xss-notice", "custom"}},
		{"Co-browse", []string{"CoBrowseSessionId set to CB-42", "cobrowse.joined"}},
		{"Survey", []string{`<dd class="notes">5</dd>`}},
		{"Wrap-up", []string{"Solved &lt;b id=&#34;xss-notes&#34;&gt;n&lt;/b&gt;", "<dd>olga</dd>"}},
		{"Audit", []string{"chat.wrap_up", "<td>sam</td><td>supervisor.view</td>"}},
	}
	for i, s := range sections {
		start := strings.Index(page, ">"+s.heading+"</h2>")
		if start < 0 {
			t.Fatalf("no heading %q:\n%s", s.heading, page)
		}
		end := len(page)
		if i+1 < len(sections) {
			end = strings.Index(page, ">"+sections[i+1].heading+"</h2>")
		}
		if end < start {
			t.Fatalf("heading %q is not followed by %q", s.heading, sections[i+1].heading)
		}
		for _, w := range s.wants {
			if !strings.Contains(page[start:end], w) {
				t.Fatalf("section %q lacks %s:\n%s", s.heading, w, page[start:end])
			}
		}
	}
	for _, raw := range []string{`<b id="xss-`, `<img id="xss-`} {
		if strings.Contains(page+home, raw) {
			t.Fatalf("unescaped %s in the supervisor pages", raw)
		}
	}
	if n := supervisorViews(t, m, id, "sam"); n != 1 {
		t.Fatalf("supervisor.view rows: %d, want 1", n)
	}

	for _, bad := range []string{"/supervisor/interactions/not-a-uuid", "/supervisor/interactions/00000000-0000-4000-8000-000000000000",
		"/supervisor/interactions/" + id + "x"} {
		resp, body := get(t, c, base+bad)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "No interaction with this id.") {
			t.Fatalf("%s: %d, want 404 with its message: %.300s", bad, resp.StatusCode, body)
		}
	}
	resp, body := get(t, c, base+"/supervisor?id=%3Cscript%3E")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "An interaction id is a UUID") || strings.Contains(body, "<script>") {
		t.Fatalf("Open with a malformed id: %d: %.300s", resp.StatusCode, body)
	}
	resp, _ = get(t, c, base+"/supervisor?id=+"+id+"+")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/supervisor/interactions/"+id {
		t.Fatalf("Open %s: %d to %q", id, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestBrowserSupervisor: a supervisor signs in and lands on /supervisor, follows the customer's
// name to the review, which has every heading, passes axe, and shows the XSS strings as text.
func TestBrowserSupervisor(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	_, id := reviewedChat(t, m)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	base := m.URL()
	tab := newTab(t, newBrowser(t))
	signIn(t, tab, base, "sam", "sam-password")
	poll(t, tab, "supervisor home", `location.pathname === '/supervisor' && document.querySelector('h1')?.textContent === 'Supervisor'`)
	checkAxe(t, tab, "/supervisor")
	click(t, tab, `#recent-table a[href="/supervisor/interactions/`+id+`"]`)
	poll(t, tab, "interaction review", `location.pathname === '/supervisor/interactions/`+id+`' &&
		JSON.stringify([...document.querySelectorAll('h2')].map(h => h.textContent)) ===
		JSON.stringify(["Transcript", "UserData", "UserData history", "Notices", "Co-browse", "Survey", "Wrap-up", "Audit"])`)
	checkAxe(t, tab, "/supervisor/interactions/{id}")
	poll(t, tab, "XSS shown as text", `!document.querySelector('[id^="xss-"]') && !window.pwned &&
		document.querySelector('h1').textContent === 'Chat with '+`+jsString(supXSSName)+` &&
		document.getElementById('transcript').textContent.includes(`+jsString(supXSSMessage)+`) &&
		document.getElementById('userdata').textContent.includes(`+jsString(supXSSKey)+`) &&
		document.getElementById('userdata').textContent.includes(`+jsString(supXSSValue)+`) &&
		document.getElementById('notices').textContent.includes('xss-notice') &&
		document.getElementById('wrapup').textContent.includes(`+jsString(supXSSNotes)+`)`)
	browse(t, tab, chromedp.Navigate(base+"/supervisor/interactions/nope"))
	poll(t, tab, "404 page", `document.body.textContent.includes('No interaction with this id.')`)
}
