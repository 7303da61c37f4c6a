package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"agentd/agent"
	"agentd/chat"
	"agentd/postgres"
)

// wrapWith ends a chat, wraps it up with disposition and answers its survey with csat.
func wrapWith(t *testing.T, m *Main, u agent.User, id, disposition, csat string) {
	t.Helper()
	ctx := context.Background()
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, u, id, disposition, ""); err != nil {
		t.Fatal(err)
	}
	survey := strings.Trim(strings.Fields(readChat(t, m, id).UserData["SurveyURL"])[0], `"`)
	if err := m.Surveys.SubmitSurvey(ctx, survey[strings.LastIndex(survey, "/")+1:], map[string]string{"CSAT": csat}); err != nil {
		t.Fatal(err)
	}
}

func optDur(d *time.Duration) string {
	if d == nil {
		return "none"
	}
	return d.String()
}

// TestDashboardFigures: the dashboard's reads on real Postgres, with chats driven through the
// real services: the queues (waiting, longest wait, offered, active, abandoned today), every
// agent who takes chats with state, reason, load and capacity (not the disabled, not a supervisor
// without services), the live chats with their agent and pending-response time; then, with the
// chats' timestamps set to known values, the exact hourly and daily figures (volume, answered,
// abandoned, average and p90 wait, handle time, CSAT) and the dispositions.
func TestDashboardFigures(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	if err := m.DB.EnsureService(ctx, "quiet", "Quiet", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	setStrategy(t, m, "default", agent.Strategy{Survey: &agent.Survey{When: "ended"}, Dispositions: []string{"Resolved", "Escalated"}})
	olga := newAgent(t, m, "olga", 2)
	pia := newAgent(t, m, "pia", 1)
	newAgent(t, m, "quin", 3)
	rex := newAgent(t, m, "rex", 3)
	if _, _, err := m.Accounts.SetDisabled(ctx, "rex", true); err != nil {
		t.Fatal(err)
	}
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor) // no services: does not take chats
	sue, err := m.Accounts.CreateUser(ctx, agent.NewUser{Username: "sue", Password: "sue-password", Role: agent.RoleSupervisor,
		DisplayName: "Sue", Capacity: 1, Services: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Agents.SetState(ctx, pia, agent.StateNotReady, "Lunch"); err != nil {
		t.Fatal(err)
	}
	ready(t, m, olga)

	_, a := acceptedChat(t, m, olga, map[string]any{"username": "Ann"})
	wrapWith(t, m, olga, a, "Resolved", "4")
	_, e := acceptedChat(t, m, olga, map[string]any{"username": "Eli"})
	wrapWith(t, m, olga, e, "Escalated", "5")
	cb, db := startSession(t, m, map[string]any{"username": "Bo", "service": "quiet"})
	b := db.str("session_id")
	mustOK(t, cb.do("leave", nil))
	_, dc := startSession(t, m, map[string]any{"username": "Cy", "service": "quiet"})
	c := dc.str("session_id")
	cd, d := acceptedChat(t, m, olga, map[string]any{"username": "Dee <i>"})
	mustOK(t, cd.do("send_message", map[string]any{"text": "Anyone there?"}))

	store := postgres.NewDashboardStore(m.DB)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	qs, err := store.Queues(ctx, today)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]agent.QueueStat{}
	for _, q := range qs {
		got[q.Service] = q
	}
	if q := got["default"]; q.Waiting != 0 || q.OldestSince != nil || q.Offered != 3 || q.Active != 1 || q.Abandoned != 0 {
		t.Fatalf("default queue: %+v", q)
	}
	if q := got["quiet"]; q.Waiting != 1 || q.OldestSince == nil || q.Offered != 2 || q.Active != 0 || q.Abandoned != 1 || q.DisplayName != "Quiet" {
		t.Fatalf("quiet queue: %+v", q)
	}

	as, err := store.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, a := range as {
		lines = append(lines, a.Username+" "+string(a.State)+" "+a.NotReadyReason+" "+strings.Repeat("#", a.Load)+"/"+strings.Repeat("#", a.Capacity))
		if a.ID == rex.ID {
			t.Fatal("a disabled agent is listed")
		}
	}
	if want := "olga ready  #/## | pia not_ready Lunch /# | quin offline  /### | sue offline  /#"; strings.Join(lines, " | ") != want {
		t.Fatalf("agents:\n%s\nwant\n%s", strings.Join(lines, " | "), want)
	}
	if as[3].ID != sue.ID || as[0].StateSince.IsZero() {
		t.Fatalf("agents: %+v", as)
	}

	live, err := store.LiveChats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].ID != d || live[0].Customer != "Dee <i>" || strings.Join(live[0].Agents, ",") != "Agent olga" ||
		live[0].PendingSince == nil || live[0].Service != "Default" {
		t.Fatalf("live chats: %+v", live)
	}

	// Known timestamps: hour 0 has Ann (wait 1m, handle 10m), Eli (wait 3m, handle 10m) and Bo
	// (abandoned); hour 1 has Cy (waiting) and Dee (wait 1m, not ended).
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	for _, s := range []struct {
		id                      string
		created, accepted, ends int // minutes after base; -1: not set
	}{{a, 5, 6, 16}, {e, 10, 13, 23}, {b, 20, -1, 21}, {c, 70, -1, -1}, {d, 75, 76, -1}} {
		if _, err := m.DB.Pool.Exec(ctx, `UPDATE interactions SET created_at = $2, queued_at = $2 WHERE id = $1`, s.id, at(s.created)); err != nil {
			t.Fatal(err)
		}
		if s.accepted >= 0 {
			if _, err := m.DB.Pool.Exec(ctx, `UPDATE assignments SET accepted_at = $2 WHERE interaction_id = $1`, s.id, at(s.accepted)); err != nil {
				t.Fatal(err)
			}
		}
		if s.ends >= 0 {
			if _, err := m.DB.Pool.Exec(ctx, `UPDATE interactions SET ended_at = $2 WHERE id = $1`, s.id, at(s.ends)); err != nil {
				t.Fatal(err)
			}
		}
	}
	hours, err := store.Trend(ctx, base, base.Add(3*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	figs := func(fs []agent.Figures) string {
		var out []string
		for _, f := range fs {
			cs := "none"
			if f.AvgCSAT != nil {
				cs = strconv.FormatFloat(*f.AvgCSAT, 'f', -1, 64)
			}
			out = append(out, f.Start.UTC().Format("01-02T15")+" chats "+strconv.Itoa(f.Chats)+" answered "+strconv.Itoa(f.Answered)+" abandoned "+strconv.Itoa(f.Abandoned)+
				" wait "+optDur(f.AvgWait)+" p90 "+optDur(f.P90Wait)+" handle "+optDur(f.AvgHandle)+" rated "+strconv.Itoa(f.Rated)+" csat "+cs)
		}
		return strings.Join(out, "\n")
	}
	want := `01-05T10 chats 3 answered 2 abandoned 1 wait 2m0s p90 2m48s handle 10m0s rated 2 csat 4.5
01-05T11 chats 2 answered 1 abandoned 0 wait 1m0s p90 1m0s handle none rated 0 csat none
01-05T12 chats 0 answered 0 abandoned 0 wait none p90 none handle none rated 0 csat none`
	if g := figs(hours); g != want {
		t.Fatalf("hourly figures:\n%s\nwant\n%s", g, want)
	}
	days, err := store.Trend(ctx, base.Truncate(24*time.Hour).AddDate(0, 0, -6), base.Truncate(24*time.Hour).AddDate(0, 0, 1), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 7 || days[0].Chats != 0 || days[6].Chats != 5 || days[6].Answered != 3 || days[6].Abandoned != 1 ||
		optDur(days[6].AvgWait) != "1m40s" || optDur(days[6].AvgHandle) != "10m0s" || days[6].Rated != 2 {
		t.Fatalf("daily figures:\n%s", figs(days))
	}
	disps, err := store.Dispositions(ctx, base, base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(disps) != 2 || disps[0] != (agent.DispositionCount{Disposition: "Escalated", Count: 1}) || disps[1] != (agent.DispositionCount{Disposition: "Resolved", Count: 1}) {
		t.Fatalf("dispositions: %+v", disps)
	}
	if none, err := store.Dispositions(ctx, base.Add(time.Hour), base.Add(3*time.Hour)); err != nil || len(none) != 0 {
		t.Fatalf("dispositions of a later window: %+v %v", none, err)
	}
}

// dashSocket is a supervisor's (or anyone's) dashboard socket in a test.
type dashSocket struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialDash(t *testing.T, base string, c *http.Client, origin string) (*dashSocket, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: c.Jar}
	ws, resp, err := d.Dial(strings.Replace(base, "http://", "ws://", 1)+"/supervisor/socket", http.Header{"Origin": {origin}})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &dashSocket{t: t, ws: ws}, resp, nil
}

// next reads frames until pred accepts one (bounded).
func (s *dashSocket) next(what string, pred func(frame) bool) frame {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_ = s.ws.SetReadDeadline(deadline)
		var f frame
		if err := s.ws.ReadJSON(&f); err != nil {
			s.t.Fatalf("dashboard socket, waiting for %s: %v", what, err)
		}
		if pred(f) {
			return f
		}
	}
}

// ops returns an ops frame's fragments by id.
func ops(f frame) map[string]string {
	out := map[string]string{}
	if f["type"] != "ops" {
		return out
	}
	list, _ := f["ops"].([]any)
	for _, o := range list {
		op, _ := o.(map[string]any)
		id, _ := op["id"].(string)
		html, _ := op["html"].(string)
		out[id] = html
	}
	return out
}

func supervisorCSRF(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	_, page := get(t, c, base+"/supervisor")
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("/supervisor has no CSRF token: %.300s", page)
	}
	return m[1]
}

// TestDashboardSocket: /supervisor/socket refuses an agent (403, before any upgrade), a page from
// another site, and a first frame without the session's CSRF token; answers a frame that is not
// JSON with bad_frame and a command with unknown_command; and, on node B, redraws as a chat
// started on node A waits in its queue, is accepted and ends.
func TestDashboardSocket(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	// No periodic refresh: every redraw the test waits for must come from a notification.
	fast := func(c *Config) {
		c.Router.RouteInterval = 20 * time.Millisecond
		c.Dashboard.RefreshEvery = time.Hour
	}
	a := startNode(t, db, fast, func(c *Config) { c.NodeID = "dash-a" })
	b := startNode(t, db, fast, func(c *Config) { c.NodeID = "dash-b" })
	olga := newAgent(t, a, "olga", 2)
	newAdminUser(t, a, "sam", "sam-password", agent.RoleSupervisor)
	base := b.URL()

	t.Run("ErrAgentForbidden", func(t *testing.T) {
		ag := httpClient(t)
		signInAt(t, ag, base, "olga", "password-olga")
		_, resp, err := dialDash(t, base, ag, base)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an agent's dashboard socket: %v %v, want 403", resp, err)
		}
		anon := httpClient(t)
		if _, resp, err := dialDash(t, base, anon, base); err == nil || resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			t.Fatalf("an anonymous dashboard socket: %v %v", resp, err)
		}
	})

	sup := httpClient(t)
	signInAt(t, sup, base, "sam", "sam-password")
	csrf := supervisorCSRF(t, sup, base)

	t.Run("ErrForeignOrigin", func(t *testing.T) {
		_, resp, err := dialDash(t, base, sup, "https://evil.example")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a foreign page's dashboard socket: %v %v, want 403", resp, err)
		}
	})

	t.Run("ErrBadCSRF", func(t *testing.T) {
		s, _, err := dialDash(t, base, sup, base)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.ws.WriteJSON(map[string]any{"id": "h1", "cmd": "hello", "args": map[string]string{"csrf": "wrong"}})
		f := s.next("the refusal", func(f frame) bool { return f["type"] == "result" })
		if f["ok"] != false || f.str("error", "code") != "csrf" {
			t.Fatalf("hello with a wrong token: %v", f)
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err = s.ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("after a wrong token: %v, want close 1008", err)
		}
	})

	s, _, err := dialDash(t, base, sup, base)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.ws.WriteMessage(websocket.TextMessage, []byte("not json"))
	if f := s.next("bad_frame", func(f frame) bool { return f["type"] == "error" }); f.str("error", "code") != "bad_frame" {
		t.Fatalf("a frame that is not JSON: %v", f)
	}
	_ = s.ws.WriteJSON(map[string]any{"id": "h2", "cmd": "hello", "args": map[string]string{"csrf": csrf}})
	if f := s.next("hello", func(f frame) bool { return f["type"] == "result" }); f["ok"] != true {
		t.Fatalf("hello: %v", f)
	}
	first := ops(s.next("the first render", func(f frame) bool { return f["type"] == "ops" }))
	for _, id := range []string{"dash-queues", "dash-agents", "dash-live", "dash-charts"} {
		if first[id] == "" {
			t.Fatalf("the first render lacks %s: %v", id, first)
		}
	}
	if !strings.Contains(first["dash-live"], "No live chats.") || !strings.Contains(first["dash-agents"], "Agent olga") {
		t.Fatalf("first render: %v", first)
	}
	_ = s.ws.WriteJSON(map[string]any{"id": "c1", "cmd": "accept", "args": map[string]string{}})
	if f := s.next("unknown_command", func(f frame) bool { return f["type"] == "result" }); f["ok"] != false || f.str("error", "code") != "unknown_command" {
		t.Fatalf("a command: %v", f)
	}

	// A chat on node A: waiting, then live with its agent, then gone, each on node B's dashboard.
	cust, d := startSession(t, a, map[string]any{"username": "Nina <b>"})
	id := d.str("session_id")
	s.next("the chat waiting", func(f frame) bool {
		return strings.Contains(ops(f)["dash-queues"], `<td class="waiting">1</td>`)
	})
	ready(t, a, olga)
	acceptOffer(t, a, olga, id)
	live := s.next("the chat live", func(f frame) bool {
		h := ops(f)["dash-live"]
		return strings.Contains(h, `id="dash-live-`+id+`"`) && strings.Contains(h, "Agent olga")
	})
	h := ops(live)
	if !strings.Contains(h["dash-live"], "Nina &lt;b&gt;") || !strings.Contains(h["dash-live"], `href="/supervisor/monitor/`+id+`"`) ||
		!strings.Contains(h["dash-agents"], "1 of 2") {
		t.Fatalf("live render: %v", h)
	}
	mustOK(t, cust.do("leave", nil))
	s.next("the chat off the live list", func(f frame) bool {
		h, ok := ops(f)["dash-live"]
		return ok && !strings.Contains(h, id)
	})
}

// TestBrowserSupervisorDashboard: in three browser contexts, a customer on the demo page
// (chat-service.js), an agent's console and a supervisor's dashboard. The customer starts a chat:
// the dashboard shows it waiting under Queues; the agent goes Ready (the dashboard shows the
// state) and accepts: it shows under Live chats with the agent's name, and the agent's load goes
// up; the customer's unanswered message shows its time waiting, and past a minute the alarm,
// "Overdue"; "Monitor" links to the chat's monitor page — all without a reload, and axe-clean.
func TestBrowserSupervisorDashboard(t *testing.T) {
	t.Parallel()
	// No periodic refresh: every change the dashboard shows comes from a notification, and
	// every time that moves is moved by supervisor.js.
	m := startNode(t, newDB(t), func(c *Config) {
		c.Router.RouteInterval = 50 * time.Millisecond
		c.Dashboard.RefreshEvery = time.Hour
	})
	ctx := context.Background()
	olga := newAgent(t, m, "olga", 3)
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	base := m.URL()
	browser := newBrowser(t)

	sup := newTab(t, browser)
	signIn(t, sup, base, "sam", "sam-password")
	poll(t, sup, "dashboard live", `location.pathname === '/supervisor' && document.getElementById('dash-status')?.textContent.startsWith('Live')`)
	eval[bool](t, sup, `window.notReloaded = true`)
	agentRow := `document.getElementById('dash-agent-` + strconv.Itoa(int(olga.ID)) + `')`
	poll(t, sup, "agent listed", agentRow+`?.querySelector('.load').textContent === '0 of 3'`)

	agentTab := newTab(t, browser)
	consoleFor(t, agentTab, base, "olga")

	cust := newTab(t, browser)
	browse(t, cust,
		chromedp.Navigate(base+"/demo"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Dora <b>"),
		chromedp.Click(chromedp.ID("start")),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	var id string
	waitFor(t, "interaction in Postgres", func() bool {
		_ = m.DB.Pool.QueryRow(ctx, `SELECT id FROM interactions WHERE customer_name = 'Dora <b>'`).Scan(&id)
		return id != ""
	})
	poll(t, sup, "chat waiting under Queues", `[...document.querySelectorAll('#dash-queues-table .waiting')].some(td => td.textContent === '1')`)
	checkAxe(t, sup, "/supervisor with a chat waiting")

	click(t, agentTab, `#presence button[data-state=ready]`)
	poll(t, sup, "agent Ready", agentRow+`?.querySelector('.state').textContent === 'Ready'`)
	click(t, agentTab, `#offer-`+id+` button[data-cmd=accept]`)
	liveRow := `document.getElementById('dash-live-` + id + `')`
	poll(t, sup, "chat under Live chats", liveRow+`?.querySelector('.agents').textContent === 'Agent olga' &&
		`+liveRow+`.querySelector('th').textContent === 'Dora <b>'`)
	poll(t, sup, "agent's load", agentRow+`?.querySelector('.load').textContent === '1 of 3'`)
	poll(t, sup, "queue empty again", `[...document.querySelectorAll('#dash-queues-table .waiting')].every(td => td.textContent === '0')`)

	browse(t, cust, chromedp.SendKeys(chromedp.ID("message"), "Hello?"), chromedp.Click(chromedp.ID("send")))
	pending := liveRow + `?.querySelector('.pending .ticker')`
	poll(t, sup, "the pending time", pending+` && !`+pending+`.classList.contains('alarm') && /^\d+s$/.test(`+pending+`.textContent)`)
	// The times tick in the page: the same element, not redrawn, counts up.
	eval[bool](t, sup, `(window.marked = `+pending+`, window.markedText = window.marked.textContent, true)`)
	poll(t, sup, "the pending time ticking", `window.marked.isConnected && window.marked.textContent !== window.markedText &&
		/^\d+s$/.test(window.marked.textContent)`)
	// The first message has waited 50 s; the customer's second one redraws the row with that
	// time, and in the page it turns into the alarm at one minute, in words: "Overdue".
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE interactions SET pending_since = now() - interval '50 seconds' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	browse(t, cust, chromedp.SendKeys(chromedp.ID("message"), "Still there?"), chromedp.Click(chromedp.ID("send")))
	poll(t, sup, "the older pending time", `/^5\ds$/.test(`+pending+`?.textContent) && !`+pending+`.classList.contains('alarm')`)
	eval[bool](t, sup, `(window.marked = `+pending+`, true)`)
	poll(t, sup, "the pending alarm", `window.marked.isConnected && window.marked.classList.contains('alarm') &&
		window.marked.textContent.startsWith('Overdue: 1m 0')`)
	mon := eval[map[string]string](t, sup, `(() => { const a = `+liveRow+`.querySelector('a'); return {name: a.textContent, href: a.getAttribute('href')}; })()`)
	if mon["name"] != "Monitor" || mon["href"] != "/supervisor/monitor/"+id {
		t.Fatalf("Monitor link: %v", mon)
	}
	if !eval[bool](t, sup, `window.notReloaded === true && !document.querySelector('#dashboard b')`) {
		t.Fatal("the dashboard was reloaded, or showed the customer's name as HTML")
	}
	checkAxe(t, sup, "/supervisor with a live chat and the pending alarm")

	// Opened again, the charts count the chat in this hour and today, bar and table alike.
	browse(t, sup, chromedp.Navigate(base+"/supervisor"))
	poll(t, sup, "the chat in the charts", `[...document.querySelectorAll('#chart-day-volume .value')].some(v => v.textContent === '1') &&
		[...document.querySelectorAll('#chart-week-volume .value')].at(-1).textContent === '1' &&
		[...document.querySelectorAll('#dash-table-day tbody tr')].some(tr => tr.querySelector('td').textContent === '1')`)
	screenshot(t, sup, "supervisor-dashboard.png")
	checkAxe(t, sup, "/supervisor with charts")
}

// TestDashboardSocketSessionEnds: signing out closes an open dashboard (1008 "session ended") at
// its next session check.
func TestDashboardSocketSessionEnds(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Dashboard.RefreshEvery = 100 * time.Millisecond })
	newAdminUser(t, m, "sam", "sam-password", agent.RoleSupervisor)
	base := m.URL()
	sup := httpClient(t)
	signInAt(t, sup, base, "sam", "sam-password")
	csrf := supervisorCSRF(t, sup, base)
	s, _, err := dialDash(t, base, sup, base)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.ws.WriteJSON(map[string]any{"id": "h1", "cmd": "hello", "args": map[string]string{"csrf": csrf}})
	s.next("the first render", func(f frame) bool { return f["type"] == "ops" })
	if resp, body := postForm(t, sup, base+"/logout", url.Values{"_csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d %s", resp.StatusCode, body)
	}
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := s.ws.ReadMessage()
		if err == nil {
			continue // a refresh sent before the check
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "session ended" {
			t.Fatalf("after signing out: %v, want close 1008 session ended", err)
		}
		return
	}
}
