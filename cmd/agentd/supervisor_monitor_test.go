package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"agentd"
	"agentd/agent"
)

// opsSocket opens a signed-in socket at path on node m with the browser session of hc, past
// its CSRF hello. Its frames (ops) and results are read by the test client.
func opsSocket(t *testing.T, m *Main, hc *http.Client, csrf, path string) *client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: hc.Jar}
	ws, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+path, http.Header{"Origin": {m.URL()}})
	if err != nil {
		t.Fatalf("socket %s: %v (%v)", path, err, resp)
	}
	c := newClient(t, ws)
	mustOK(t, c.do("hello", map[string]string{"csrf": csrf}))
	return c
}

// lastOp returns the HTML of the last op on element id, and whether there was one (c.mu held).
func lastOp(c *client, id string) (string, bool) {
	html, found := "", false
	for _, f := range c.frames {
		if f["type"] != "ops" {
			continue
		}
		ops, _ := f["ops"].([]any)
		for _, o := range ops {
			op, _ := o.(map[string]any)
			if op["id"] == id {
				html, _ = op["html"].(string)
				found = true
			}
		}
	}
	return html, found
}

// opsOn returns every op's HTML on element id, joined (c.mu held).
func opsOn(c *client, id string) string {
	var b strings.Builder
	for _, f := range c.frames {
		if f["type"] != "ops" {
			continue
		}
		ops, _ := f["ops"].([]any)
		for _, o := range ops {
			if op, _ := o.(map[string]any); op["id"] == id {
				h, _ := op["html"].(string)
				b.WriteString(h)
			}
		}
	}
	return b.String()
}

func waitOps(t *testing.T, c *client, what, id string, pred func(all, last string) bool) {
	t.Helper()
	c.wait(what, func() bool {
		last, _ := lastOp(c, id)
		return pred(opsOn(c, id), last)
	})
}

// everything returns every frame and result a client received, as one JSON text.
func everything(c *client) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"frames": c.frames, "results": c.result})
	return string(b)
}

func auditCount(t *testing.T, m *Main, id, username, action string) int {
	t.Helper()
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.user_id
		WHERE a.action = $3 AND a.target = $1 AND u.username = $2`, id, username, action).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newSupervisor(t *testing.T, m *Main, username, display string) agent.User {
	t.Helper()
	u, err := m.Accounts.CreateUser(context.Background(), agent.NewUser{Username: username, Password: "password-" + username,
		Role: agent.RoleSupervisor, DisplayName: display})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSupervisorMonitorTwoNodes: the chat runs on node A (customer and agent console there), the
// supervisor monitors it from node B. B's monitor shows the live transcript, the customer's
// typing and UserData; A's console shows "Monitored by" from the start of monitoring until the
// monitor closes. A whisper reaches the console marked and never the customer: not live, not by
// get_transcript, not on a restore. Barge in gives the customer a party of type supervisor, its
// message reaches customer and agent, Leave leaves the chat active with the agent. Every action
// is audited and the review shows the whisper, marked, in Transcript, and the audit rows.
func TestSupervisorMonitorTwoNodes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	fast := func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond }
	a := startNode(t, db, func(c *Config) { fast(c); c.NodeID = "node-a" })
	b := startNode(t, db, func(c *Config) { fast(c); c.NodeID = "node-b" })
	ctx := context.Background()
	olga := newAgent(t, a, "olga", 2)
	newSupervisor(t, a, "sam", "Sam Super")
	ready(t, a, olga)
	cust, sess := startSession(t, a, map[string]any{"username": "Carol"})
	id := sess.str("session_id")
	acceptOffer(t, a, olga, id)

	agentHC := httpClient(t)
	console := opsSocket(t, a, agentHC, login(t, agentHC, a.URL(), "olga", "password-olga"), "/ws/console")
	waitOps(t, console, "the chat's panel", "chat-panels", func(all, _ string) bool { return strings.Contains(all, id) })

	supHC := httpClient(t)
	supCSRF := login(t, supHC, b.URL(), "sam", "password-sam")
	resp, page := get(t, supHC, b.URL()+"/supervisor/monitor/"+id)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<label for="whisper-text">Whisper</label>`) ||
		!strings.Contains(page, ">Send whisper</button>") {
		t.Fatalf("monitor page: %d %.500s", resp.StatusCode, page)
	}
	mon := opsSocket(t, b, supHC, supCSRF, "/supervisor/monitor/"+id+"/ws")
	waitOps(t, console, "Monitored by on A's console", "monitored-"+id, func(_, last string) bool { return last == "Monitored by Sam Super" })
	waitOps(t, mon, "Barge in offered", "mon-controls", func(_, last string) bool { return strings.Contains(last, ">Barge in</button>") })

	// Live on B: the customer's message, typing and UserData, all done on A.
	mustOK(t, cust.do("send_message", map[string]any{"text": "my order is late"}))
	waitOps(t, mon, "the customer's message on B", "mon-transcript", func(all, _ string) bool { return strings.Contains(all, "my order is late") })
	mustOK(t, cust.do("typing", map[string]any{"is_typing": true, "text": "it was due"}))
	waitOps(t, mon, "the customer's typing on B", "mon-typing", func(_, last string) bool { return strings.Contains(last, "Carol is typing: “it was due”") })
	mustOK(t, cust.do("update_userdata", map[string]any{"user_data": map[string]any{"OrderId": "A-77"}}))
	waitOps(t, mon, "UserData on B", "ud-"+id, func(_, last string) bool { return strings.Contains(last, "OrderId") && strings.Contains(last, "A-77") })

	// The whisper: on A's console, marked; never to the customer.
	const secret = "psst: offer the refund"
	mustOK(t, mon.do("whisper", map[string]any{"text": secret}))
	waitOps(t, console, "the whisper in A's console", "transcript-"+id, func(all, _ string) bool {
		return strings.Contains(all, "Whisper from Sam Super:") && strings.Contains(all, "psst: offer the refund")
	})
	waitOps(t, mon, "the whisper on the monitor", "mon-transcript", func(all, _ string) bool { return strings.Contains(all, "Whisper from Sam Super:") })
	if _, err := a.Agents.Send(ctx, olga, id, "console:after", "after that"); err != nil {
		t.Fatal(err)
	}
	cust.waitEvent("the agent's message after the whisper", func(ev frame) bool { return ev.str("content", "text") == "after that" })
	tr := mustOK(t, cust.do("get_transcript", map[string]any{}))
	restored := dial(t, b, nil)
	mustOK(t, restored.do("restore", map[string]any{"session_id": id, "secure_key": sess.str("secure_key"), "from_index": 0}))
	restored.waitEvent("the restore's catch-up", func(ev frame) bool { return ev.str("content", "text") == "after that" })
	for what, text := range map[string]string{"live socket": everything(cust), "get_transcript": mustJSON(tr), "restore": everything(restored)} {
		if strings.Contains(text, "psst") || strings.Contains(text, "Sam Super") {
			t.Fatalf("the customer received the whisper (%s): %s", what, text)
		}
	}
	for i, ev := range cust.events() { // the customer's indexes stay contiguous
		if ev.num("index") != i {
			t.Fatalf("customer event %d has index %d", i, ev.num("index"))
		}
	}

	// Barge in, write, leave.
	mustOK(t, mon.do("barge_in", map[string]any{}))
	joined := cust.waitEvent("the supervisor joined", func(ev frame) bool {
		return ev.str("kind") == "party_joined" && ev.str("party", "type") == "supervisor"
	})
	if joined.str("party", "name") != "Sam Super" {
		t.Fatalf("supervisor party: %v", joined)
	}
	mustOK(t, mon.do("barge_in", map[string]any{})) // the same supervisor again: nothing new
	waitOps(t, mon, "Message and Leave", "mon-controls", func(_, last string) bool {
		return strings.Contains(last, `<label for="mon-message">Message</label>`) && strings.Contains(last, ">Leave</button>")
	})
	mustOK(t, mon.do("send", map[string]any{"text": "Hello, I am the supervisor"}))
	cust.waitEvent("the supervisor's message", func(ev frame) bool {
		return ev.str("content", "text") == "Hello, I am the supervisor" && ev.str("party", "type") == "supervisor"
	})
	waitOps(t, console, "the supervisor's message in the console", "transcript-"+id, func(all, _ string) bool { return strings.Contains(all, "Hello, I am the supervisor") })
	mustOK(t, mon.do("leave", map[string]any{}))
	cust.waitEvent("the supervisor left", func(ev frame) bool { return ev.str("kind") == "party_left" && ev.str("party", "type") == "supervisor" })
	for _, ev := range cust.events() {
		if ev.str("kind") == "party_left" && ev.str("party", "type") != "supervisor" || ev.str("kind") == "session_ended" {
			t.Fatalf("leave took more than the supervisor away: %v", ev)
		}
	}
	if n := len(cust.events()); n == 0 {
		t.Fatal("no events")
	}
	if in, err := a.Chat.Interaction(ctx, id); err != nil || in.State != "active" {
		t.Fatalf("after Leave the chat is %v (%v), want active", in.State, err)
	}
	if _, err := a.Agents.Send(ctx, olga, id, "console:still", "still mine"); err != nil {
		t.Fatalf("the agent lost the chat: %v", err)
	}
	mustErr(t, mon.do("send", map[string]any{"text": "after leaving"}), "not_barged_in")

	// The monitor goes away: so does the line on A.
	_ = mon.ws.Close()
	waitOps(t, console, "Monitored by gone", "monitored-"+id, func(_, last string) bool { return last == "" })

	for _, action := range []string{"supervisor.monitor_start", "supervisor.whisper", "supervisor.barge_in", "supervisor.message",
		"supervisor.leave", "supervisor.monitor_stop"} {
		if n := auditCount(t, a, id, "sam", action); n != 1 {
			t.Fatalf("audit %s: %d rows, want 1", action, n)
		}
	}
	_, review := get(t, supHC, b.URL()+"/supervisor/interactions/"+id)
	tStart, tEnd := strings.Index(review, ">Transcript</h2>"), strings.Index(review, ">UserData</h2>")
	if tStart < 0 || tEnd < tStart {
		t.Fatalf("review has no Transcript: %s", review)
	}
	transcript := review[tStart:tEnd]
	if !strings.Contains(transcript, `kind-whisper`) || !strings.Contains(transcript, "whisper") || !strings.Contains(transcript, secret) {
		t.Fatalf("the review's Transcript lacks the marked whisper: %s", transcript)
	}
	if strings.Index(transcript, "my order is late") > strings.Index(transcript, secret) ||
		strings.Index(transcript, secret) > strings.Index(transcript, "after that") {
		t.Fatalf("the whisper is out of place in the Transcript: %s", transcript)
	}
	for _, action := range []string{"supervisor.whisper", "supervisor.barge_in", "supervisor.leave", "supervisor.monitor_start"} {
		if !strings.Contains(review[strings.Index(review, ">Audit</h2>"):], "<td>"+action+"</td>") {
			t.Fatalf("the review's Audit lacks %s", action)
		}
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestSupervisorWhisperEnded: whispering into a chat that just ended fails with 409
// session_ended (socket and service) and stores and audits nothing; barge-in and messages are
// refused too.
func TestSupervisorWhisperEnded(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	olga := newAgent(t, m, "olga", 2)
	sam := newSupervisor(t, m, "sam", "Sam")
	ready(t, m, olga)
	_, id := acceptedChat(t, m, olga, nil)
	hc := httpClient(t)
	csrf := login(t, hc, m.URL(), "sam", "password-sam")
	mon := opsSocket(t, m, hc, csrf, "/supervisor/monitor/"+id+"/ws")
	if err := m.Agents.End(ctx, olga, id); err != nil {
		t.Fatal(err)
	}
	mustErr(t, mon.do("whisper", map[string]any{"text": "too late"}), "session_ended")
	mustErr(t, mon.do("barge_in", map[string]any{}), "session_ended")
	mustErr(t, mon.do("send", map[string]any{"text": "too late"}), "session_ended")
	mustErr(t, mon.do("leave", map[string]any{}), "session_ended")
	_, err := m.Supervision.Whisper(ctx, sam, id, "too late")
	if agentd.ErrorCode(err) != "session_ended" || agentd.ErrorClass(err) != agentd.ECONFLICT {
		t.Fatalf("whisper after the end: %v", err)
	}
	var notices int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM notices WHERE interaction_id = $1 AND sender LIKE 'supervisor:%'`, id).Scan(&notices); err != nil {
		t.Fatal(err)
	}
	if notices != 0 || auditCount(t, m, id, "sam", "supervisor.whisper") != 0 {
		t.Fatalf("a refused whisper left %d notices / audit rows", notices)
	}
	// Bad input: empty and oversized whispers.
	_, id2 := acceptedChat(t, m, olga, nil)
	mon2 := opsSocket(t, m, hc, csrf, "/supervisor/monitor/"+id2+"/ws")
	mustErr(t, mon2.do("whisper", map[string]any{"text": "  "}), "invalid_text")
	mustErr(t, mon2.do("whisper", map[string]any{"text": strings.Repeat("x", 4097)}), "invalid_text")
	mustErr(t, mon2.do("send", map[string]any{"text": "not in yet"}), "not_barged_in")
	mustErr(t, mon2.do("leave", map[string]any{}), "not_barged_in")
	mustErr(t, mon2.do("nonsense", map[string]any{}), "unknown_command")
}

// TestSupervisorBargeInRace: two supervisors barge in at the same moment: exactly one gets in,
// the other gets 409 supervisor_present; the chat has one supervisor party. The same supervisor
// barging in twice at once gets the same party. After the first leaves, the second may barge in.
func TestSupervisorBargeInRace(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	olga := newAgent(t, m, "olga", 1)
	sups := []agent.User{newSupervisor(t, m, "sam", "Sam"), newSupervisor(t, m, "sue", "Sue")}
	ready(t, m, olga)
	_, id := acceptedChat(t, m, olga, nil)

	race := func(us ...agent.User) []error {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(us))
		for i, u := range us {
			wg.Go(func() {
				<-start
				_, errs[i] = m.Supervision.BargeIn(ctx, u, id)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	errs := race(sups...)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err != nil && agentd.ErrorCode(err) == "supervisor_present" && agentd.ErrorClass(err) == agentd.ECONFLICT:
		default:
			t.Fatalf("barge-in race: %v", errs)
		}
	}
	if winner < 0 {
		t.Fatalf("nobody got in: %v", errs)
	}
	supParties := func() int {
		var n int
		if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM parties WHERE interaction_id = $1 AND type = 'supervisor'`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := supParties(); n != 1 {
		t.Fatalf("%d supervisor parties, want 1", n)
	}
	if errs := race(sups[winner], sups[winner]); errs[0] != nil || errs[1] != nil || supParties() != 1 {
		t.Fatalf("the same supervisor twice: %v, %d parties", errs, supParties())
	}
	if n := auditCount(t, m, id, sups[winner].Username, "supervisor.barge_in"); n != 1 {
		t.Fatalf("barge_in audited %d times, want 1", n)
	}
	if err := m.Supervision.Leave(ctx, sups[winner], id); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Supervision.BargeIn(ctx, sups[1-winner], id); err != nil {
		t.Fatalf("the other supervisor after the first left: %v", err)
	}
}

// TestSupervisorMonitorRoles: an agent gets 403 on the monitor page and its socket (before any
// upgrade), an unknown id 404; the service refuses an agent every operation; a foreign Origin is
// refused, a socket whose first frame is not the CSRF hello is closed without monitoring; a
// supervisor whose role is taken away while the monitor is open is refused every command.
func TestSupervisorMonitorRoles(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	olga := newAgent(t, m, "olga", 1)
	newSupervisor(t, m, "sam", "Sam")
	ready(t, m, olga)
	_, id := acceptedChat(t, m, olga, nil)

	ag := httpClient(t)
	login(t, ag, m.URL(), "olga", "password-olga")
	for _, r := range []string{"/supervisor/monitor/" + id, "/supervisor/monitor/" + id + "/ws"} {
		if resp, body := get(t, ag, m.URL()+r); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("agent %s: %d, want 403: %.200s", r, resp.StatusCode, body)
		}
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: ag.Jar}
	if _, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/supervisor/monitor/"+id+"/ws",
		http.Header{"Origin": {m.URL()}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("agent's monitor socket: %v %v, want 403", err, resp)
	}
	for _, call := range []func() error{
		func() error {
			_, err := m.Supervision.StartMonitor(ctx, olga, "00000000-0000-4000-8000-000000000001", id)
			return err
		},
		func() error { _, err := m.Supervision.Whisper(ctx, olga, id, "hi"); return err },
		func() error { _, err := m.Supervision.BargeIn(ctx, olga, id); return err },
		func() error { _, err := m.Supervision.Send(ctx, olga, id, "c1", "hi"); return err },
		func() error { return m.Supervision.Leave(ctx, olga, id) },
	} {
		if err := call(); agentd.ErrorClass(err) != agentd.EFORBIDDEN {
			t.Fatalf("an agent's supervision call: %v, want forbidden", err)
		}
	}

	sup := httpClient(t)
	csrf := login(t, sup, m.URL(), "sam", "password-sam")
	for _, bad := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid"} {
		if resp, _ := get(t, sup, m.URL()+"/supervisor/monitor/"+bad); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("monitor %s: %d, want 404", bad, resp.StatusCode)
		}
	}
	wsURL := strings.Replace(m.URL(), "http://", "ws://", 1) + "/supervisor/monitor/" + id + "/ws"
	sd := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: sup.Jar}
	if _, resp, err := sd.Dial(wsURL, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a foreign Origin: %v %v, want 403", err, resp)
	}
	ws, _, err := sd.Dial(wsURL, http.Header{"Origin": {m.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, ws)
	mustErr(t, bad.do("whisper", map[string]any{"text": "before the hello"}), "csrf")
	bad.wait("close after a missing hello", func() bool { return bad.close != nil })
	if bad.close.Code != websocket.ClosePolicyViolation {
		t.Fatalf("closed with %v, want 1008", bad.close)
	}
	var monitors int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM supervisor_monitors`).Scan(&monitors); err != nil || monitors != 0 {
		t.Fatalf("a refused socket monitors: %d %v", monitors, err)
	}
	mon := opsSocket(t, m, sup, csrf, "/supervisor/monitor/"+id+"/ws")
	mustOK(t, mon.do("barge_in", map[string]any{}))
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE users SET role = 'agent' WHERE username = 'sam'`); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"whisper", "barge_in", "send", "leave"} {
		mustErr(t, mon.do(cmd, map[string]any{"text": "hi"}), "forbidden")
	}
	if n := auditCount(t, m, id, "sam", "supervisor.whisper") + auditCount(t, m, id, "sam", "supervisor.leave"); n != 0 {
		t.Fatalf("refused commands were audited: %d", n)
	}
}

// TestBrowserSupervisorMonitor: three browser contexts — a customer page on chat-service.js, the
// agent's console and the supervisor's monitor page. The monitor shows the customer's messages
// and typing live and passes axe; the console says "Monitored by"; "Send whisper" shows in the
// console marked and never in the customer's page; "Barge in" gives the customer onAgentConnected
// with party.type.supervisor; "Message"/"Send" reaches the customer; "Leave" gives the customer
// onAgentDisconnected for the supervisor, and the agent keeps the chat.
func TestBrowserSupervisorMonitor(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	var site *httptest.Server
	agentdURL := "http://" + addr
	site = sitePages(t, agentdURL, map[string]string{"/seed": seedFlow})
	m := startNode(t, newDB(t), func(c *Config) {
		c.Addr = addr
		c.allowedOrigins = site.URL
		c.Router.RouteInterval = 20 * time.Millisecond
	})
	ctx := context.Background()
	base := m.URL()
	olga := newAgent(t, m, "olga", 2)
	newSupervisor(t, m, "sam", "Sam Super")
	ready(t, m, olga)
	br := newBrowser(t)

	console := newTab(t, br)
	consoleFor(t, console, base, "olga")
	cust := newTab(t, br)
	browse(t, cust, chromedp.Navigate(site.URL+"/seed"))
	poll(t, cust, "customer session", `window.ready === true`)
	var id string
	waitFor(t, "interaction in Postgres", func() bool {
		_ = m.DB.Pool.QueryRow(ctx, `SELECT id FROM interactions WHERE customer_name = 'Carol'`).Scan(&id)
		return id != ""
	})
	acceptOffer(t, m, olga, id)
	poll(t, console, "the chat's panel", `!!document.getElementById('chat-`+id+`')`)

	sup := newTab(t, br)
	signIn(t, sup, base, "sam", "password-sam")
	poll(t, sup, "supervisor home", `location.pathname === '/supervisor'`)
	browse(t, sup, chromedp.Navigate(base+"/supervisor/monitor/"+id))
	poll(t, sup, "monitor live", `document.getElementById('monitor-status').textContent.startsWith('Monitoring live') &&
		!!document.getElementById('barge-in')`)
	poll(t, console, "Monitored by", `document.getElementById('monitored-`+id+`').textContent.trim() === 'Monitored by Sam Super'`)

	eval[bool](t, cust, `(window.session.sendMessage('Where is my parcel?'), true)`)
	poll(t, sup, "the customer's message", `document.getElementById('mon-transcript').textContent.includes('Where is my parcel?')`)
	eval[bool](t, cust, `(window.session.sendTyping({isTyping: true, typedText: 'it was due'}), true)`)
	poll(t, sup, "the customer's typing", `document.getElementById('mon-typing').textContent.includes('Carol is typing')`)
	checkLabels(t, sup, "monitor page")
	checkAxe(t, sup, "/supervisor/monitor/{id}")

	browse(t, sup, chromedp.SendKeys(chromedp.ID("whisper-text"), "psst: offer the refund"))
	click(t, sup, `#whisper-form button[type=submit]`)
	poll(t, console, "the whisper in the console, marked", `[...document.querySelectorAll('#transcript-`+id+` li')].some(li =>
		li.classList.contains('ev-whisper') && li.textContent.includes('Whisper from Sam Super:') && li.textContent.includes('psst: offer the refund'))`)
	if _, err := m.Agents.Send(ctx, olga, id, "console:after", "after that"); err != nil {
		t.Fatal(err)
	}
	poll(t, cust, "the agent's message after the whisper", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'after that')`)
	if eval[bool](t, cust, `JSON.stringify(window.log).includes('psst') || document.body.textContent.includes('psst')`) {
		t.Fatal("the customer's page received the whisper")
	}

	click(t, sup, `#barge-in`)
	poll(t, cust, "onAgentConnected for the supervisor", `window.log.some(l => l.kind === 'agentConnected' && l.e.party.type.supervisor === true &&
		l.e.party.name === 'Sam Super')`)
	poll(t, sup, "Message and Send", `!!document.getElementById('mon-message') && !!document.getElementById('mon-leave')`)
	checkAxe(t, sup, "/supervisor/monitor/{id} barged in")
	browse(t, sup, chromedp.SendKeys(chromedp.ID("mon-message"), "Hello from the supervisor"))
	click(t, sup, `#mon-send-form button[type=submit]`)
	poll(t, cust, "the supervisor's message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'Hello from the supervisor' &&
		l.e.party.type.supervisor === true)`)
	poll(t, console, "the supervisor's message in the console", `document.getElementById('transcript-`+id+`').textContent.includes('Hello from the supervisor')`)
	screenshot(t, sup, "supervisor-monitor.png")
	click(t, sup, `#mon-leave`)
	poll(t, cust, "onAgentDisconnected for the supervisor", `window.log.some(l => l.kind === 'agentDisconnected' && l.e.party.type.supervisor === true)`)
	poll(t, sup, "Barge in again", `!!document.getElementById('barge-in')`)
	if eval[bool](t, cust, `window.log.some(l => l.kind === 'ended' || (l.kind === 'agentDisconnected' && l.e.party.type.agent))`) {
		t.Fatal("Leave ended the chat or took the agent away")
	}
	if in, err := m.Chat.Interaction(ctx, id); err != nil || in.State != "active" {
		t.Fatalf("after Leave: %v %v", in.State, err)
	}

	// The supervisor leaves the page: the console's line goes.
	browse(t, sup, chromedp.Navigate(base+"/supervisor"))
	waitFor(t, "the monitoring session deleted", func() bool {
		var n int
		_ = m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM supervisor_monitors`).Scan(&n)
		return n == 0
	})
	poll(t, console, "Monitored by gone", `document.getElementById('monitored-`+id+`').textContent.trim() === ''`)
}

// TestSupervisorMonitorHeartbeat: the socket renews its session's heartbeat on its tick; a session
// swept meanwhile (as after a stall past the TTL) is started again while the page stays open, and
// the agent's console shows the line again.
func TestSupervisorMonitorHeartbeat(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	olga := newAgent(t, m, "olga", 1)
	newSupervisor(t, m, "sam", "Sam")
	ready(t, m, olga)
	_, id := acceptedChat(t, m, olga, nil)
	agentHC := httpClient(t)
	console := opsSocket(t, m, agentHC, login(t, agentHC, m.URL(), "olga", "password-olga"), "/ws/console")
	hc := httpClient(t)
	opsSocket(t, m, hc, login(t, hc, m.URL(), "sam", "password-sam"), "/supervisor/monitor/"+id+"/ws")
	waitOps(t, console, "Monitored by", "monitored-"+id, func(_, last string) bool { return last == "Monitored by Sam" })
	var first string
	if err := m.DB.Pool.QueryRow(ctx, `UPDATE supervisor_monitors SET heartbeat_at = now() - interval '1 hour' RETURNING id`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the heartbeat renewed", func() bool {
		var fresh bool
		_ = m.DB.Pool.QueryRow(ctx, `SELECT heartbeat_at > now() - interval '1 minute' FROM supervisor_monitors WHERE id = $1`, first).Scan(&fresh)
		return fresh
	})
	if _, err := m.DB.Pool.Exec(ctx, `DELETE FROM supervisor_monitors`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new monitoring session", func() bool {
		var n int
		_ = m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM supervisor_monitors WHERE interaction_id = $1 AND id <> $2`, id, first).Scan(&n)
		return n == 1
	})
}

// TestBrowserSupervisorMonitorEscapes: everything the monitor page shows from others is text —
// the customer's name, messages, typing preview, UserData keys and values, and the supervisor's
// own display name and whisper: no element injected, no script run.
func TestBrowserSupervisorMonitorEscapes(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	olga := newAgent(t, m, "olga", 1)
	newSupervisor(t, m, "sam", `Sam <b id="xss-sup">s</b>`)
	ready(t, m, olga)
	c, id := acceptedChat(t, m, olga, map[string]any{"username": supXSSName})
	mustOK(t, c.do("send_message", map[string]any{"text": supXSSMessage}))
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{supXSSKey: supXSSValue}}))

	br := newBrowser(t)
	sup := newTab(t, br)
	signIn(t, sup, m.URL(), "sam", "password-sam")
	poll(t, sup, "supervisor home", `location.pathname === '/supervisor'`)
	browse(t, sup, chromedp.Navigate(m.URL()+"/supervisor/monitor/"+id))
	poll(t, sup, "monitor live", `document.getElementById('monitor-status').textContent.startsWith('Monitoring live') &&
		document.getElementById('mon-transcript').textContent.includes(`+jsString(supXSSMessage)+`)`)
	mustOK(t, c.do("typing", map[string]any{"is_typing": true, "text": `<img id="xss-typing" src=x onerror="window.pwned=1">`}))
	poll(t, sup, "the typing preview as text", `document.getElementById('mon-typing').textContent.includes('<img id="xss-typing"')`)
	browse(t, sup, chromedp.SendKeys(chromedp.ID("whisper-text"), `<b id="xss-whisper">w</b>`))
	click(t, sup, `#whisper-form button[type=submit]`)
	poll(t, sup, "the whisper as text", `document.getElementById('mon-transcript').textContent.includes('<b id="xss-whisper">w</b>')`)
	page := eval[string](t, sup, `document.getElementById('monitor').textContent`)
	for _, want := range []string{supXSSName, supXSSKey, supXSSValue, `Sam <b id="xss-sup">s</b>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the monitor page does not show %q as text", want)
		}
	}
	if eval[bool](t, sup, `!!document.querySelector('[id^="xss-"]') || window.pwned === 1`) {
		t.Fatal("a hostile string was rendered as HTML on the monitor page")
	}
}
