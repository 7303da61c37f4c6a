package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"agentd"
	"agentd/agent"
	"agentd/chat"
)

func newAgent(t testing.TB, m *Main, name string, capacity int, services ...string) agent.User {
	t.Helper()
	if len(services) == 0 {
		services = []string{"default"}
	}
	u, err := m.Accounts.CreateUser(context.Background(), agent.NewUser{
		Username: name, Password: "password-" + name, Role: agent.RoleAgent, DisplayName: "Agent " + name, Capacity: capacity, Services: services,
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ready(t testing.TB, m *Main, u agent.User) {
	t.Helper()
	if _, err := m.Agents.SetState(context.Background(), u, agent.StateReady, ""); err != nil {
		t.Fatal(err)
	}
}

func setStrategy(t *testing.T, m *Main, service string, st agent.Strategy) {
	t.Helper()
	raw, _ := json.Marshal(st)
	if err := m.DB.SetServiceStrategy(context.Background(), service, raw); err != nil {
		t.Fatal(err)
	}
}

// waitOffer waits until interactionID is offered to u.
func waitOffer(t testing.TB, m *Main, u agent.User, interactionID string) {
	t.Helper()
	waitFor(t, "offer to "+u.Username, func() bool {
		a, err := m.Agents.Assignment(context.Background(), u, interactionID)
		return err == nil && a.State == agent.AssignOffered
	})
}

// acceptOffer waits until interactionID is offered to u and accepts it.
func acceptOffer(t testing.TB, m *Main, u agent.User, interactionID string) {
	t.Helper()
	waitOffer(t, m, u, interactionID)
	if _, err := m.Agents.Accept(context.Background(), u, interactionID); err != nil {
		t.Fatalf("accept: %v", err)
	}
}

// acceptedChat starts a customer session and has u accept it.
func acceptedChat(t testing.TB, m *Main, u agent.User, args map[string]any) (*client, string) {
	t.Helper()
	c, d := startSession(t, m, args)
	id := d.str("session_id")
	acceptOffer(t, m, u, id)
	return c, id
}

func load(t *testing.T, m *Main, userID int64) int {
	t.Helper()
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM assignments WHERE user_id = $1 AND state IN ('offered','active')`, userID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil || agentd.ErrorCode(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()

	t.Run("OK_OfferAcceptCapacityDeclineWrapUp", func(t *testing.T) {
		a := newAgent(t, m, "ann", 1)
		ready(t, m, a)
		c1, d1 := startSession(t, m, nil)
		id1 := d1.str("session_id")
		acceptOffer(t, m, a, id1)
		c1.waitEvent("agent joined", func(ev frame) bool { return ev.str("party", "name") == "Agent ann" })
		if _, err := m.Agents.Accept(ctx, a, id1); agentd.ErrorCode(err) != "offer_gone" {
			t.Fatalf("accepting twice: %v", err)
		}

		// Ann is full: the next chat waits and its customer sees position 1.
		c2, d2 := startSession(t, m, nil)
		id2 := d2.str("session_id")
		c2.waitFrame("queue position", func(f frame) bool { return f["type"] == "queue" && f.num("position") == 1 })
		b := newAgent(t, m, "bob", 2)
		ready(t, m, b)
		waitOffer(t, m, b, id2)
		if load(t, m, a.ID) != 1 {
			t.Fatal("ann's capacity exceeded")
		}
		// Bob declines: it is never offered to Bob again; it goes to Ann once she wraps up.
		if err := m.Agents.Decline(ctx, b, id2); err != nil {
			t.Fatal(err)
		}
		wantCode(t, m.Agents.Decline(ctx, b, id2), "offer_gone")
		if _, err := m.Agents.Send(ctx, a, id1, "", "Bye!"); err != nil {
			t.Fatal(err)
		}
		if err := m.Agents.End(ctx, a, id1); err != nil {
			t.Fatal(err)
		}
		c1.waitEvent("ended", func(ev frame) bool { return ev.str("kind") == "session_ended" })
		// A routing pass of our own: once it returns, an offer to Bob would be committed.
		m.Router.RouteOnce(ctx)
		if as, _ := m.Agents.Assignment(ctx, b, id2); as.State == agent.AssignOffered {
			t.Fatal("declined chat offered to the same agent again")
		}
		if err := m.Agents.WrapUp(ctx, a, id1, "", "all good"); err != nil {
			t.Fatal(err)
		}
		waitOffer(t, m, a, id2)
		in, _ := m.Chat.Interaction(ctx, id1)
		if in.State != chat.StateWrapped {
			t.Fatalf("wrapped chat has state %s", in.State)
		}
		// Clean up for the next subtests.
		_, _ = m.Agents.SetState(ctx, a, agent.StateOffline, "")
		_, _ = m.Agents.SetState(ctx, b, agent.StateOffline, "")
	})

	t.Run("OK_OfferTimeoutRequeuesAndSetsNotReady", func(t *testing.T) {
		if err := m.DB.EnsureService(ctx, "timeouts", "Timeouts", chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
		setStrategy(t, m, "timeouts", agent.Strategy{AcceptTimeoutSeconds: 1})
		u := newAgent(t, m, "slow", 3, "timeouts")
		ready(t, m, u)
		_, d := startSession(t, m, map[string]any{"service": "timeouts"})
		id := d.str("session_id")
		waitOffer(t, m, u, id)
		waitFor(t, "offer timeout", func() bool {
			in, _ := m.Chat.Interaction(ctx, id)
			usr, _ := m.Accounts.User(ctx, u.ID)
			return in.State == chat.StateQueued && usr.State == agent.StateNotReady && usr.NotReadyReason == agent.ReasonMissedOffer
		})
		if _, err := m.Agents.Accept(ctx, u, id); agentd.ErrorCode(err) != "not_your_chat" {
			t.Fatalf("accepting a timed-out offer: %v", err)
		}
	})

	t.Run("OK_CustomerLeavesWhileOffered", func(t *testing.T) {
		if err := m.DB.EnsureService(ctx, "leavers", "Leavers", chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
		u := newAgent(t, m, "lea", 1, "leavers")
		ready(t, m, u)
		c, d := startSession(t, m, map[string]any{"service": "leavers"})
		id := d.str("session_id")
		waitOffer(t, m, u, id)
		mustOK(t, c.do("leave", nil))
		if _, err := m.Agents.Accept(ctx, u, id); err == nil {
			t.Fatal("accepted a chat whose customer left")
		}
		if load(t, m, u.ID) != 0 {
			t.Fatal("withdrawn offer still counts against capacity")
		}
	})

	t.Run("OK_AutoAnswerAndTransfer", func(t *testing.T) {
		for _, s := range []string{"auto", "second"} {
			if err := m.DB.EnsureService(ctx, s, s, chat.Strategy{}); err != nil {
				t.Fatal(err)
			}
		}
		setStrategy(t, m, "auto", agent.Strategy{AutoAnswer: true})
		u := newAgent(t, m, "otto", 2, "auto")
		v := newAgent(t, m, "vera", 2, "second")
		w := newAgent(t, m, "walt", 2, "second")
		ready(t, m, u)
		c, d := startSession(t, m, map[string]any{"service": "auto", "user_data": map[string]any{"FirstName": "Tina"}})
		id := d.str("session_id")
		c.waitEvent("auto-answered", func(ev frame) bool { return ev.str("party", "name") == "Agent otto" })
		if _, err := m.Agents.Send(ctx, u, id, "", "Let me transfer you"); err != nil {
			t.Fatal(err)
		}
		// Transfer to a service: queued there behind a chat already waiting, with the customer
		// following its position in the new queue; then taken by one of its agents, history intact.
		waiting, _ := startSession(t, m, map[string]any{"service": "second"})
		if err := m.Agents.Transfer(ctx, u, id, agent.TransferTarget{Service: "second"}); err != nil {
			t.Fatal(err)
		}
		c.waitEvent("otto left", func(ev frame) bool { return ev.str("kind") == "party_left" && ev.str("party", "name") == "Agent otto" })
		c.waitFrame("position 2 in the new queue", func(f frame) bool { return f["type"] == "queue" && f.num("position") == 2 })
		mustOK(t, waiting.do("leave", nil))
		c.waitFrame("position 1 in the new queue", func(f frame) bool { return f["type"] == "queue" && f.num("position") == 1 && f.num("timestamp") > 0 })
		c.wait("position 1 after position 2", func() bool {
			seen2 := false
			for _, f := range c.frames {
				if f["type"] == "queue" && f.num("position") == 2 {
					seen2 = true
				}
				if seen2 && f["type"] == "queue" && f.num("position") == 1 {
					return true
				}
			}
			return false
		})
		ready(t, m, v)
		acceptOffer(t, m, v, id)
		if load(t, m, u.ID) != 0 {
			t.Fatal("transferring agent still loaded")
		}
		// Transfer to a named agent who is not ready fails clearly; once ready it works.
		wantCode(t, m.Agents.Transfer(ctx, v, id, agent.TransferTarget{UserID: w.ID}), "agent_unavailable")
		ready(t, m, w)
		if err := m.Agents.Transfer(ctx, v, id, agent.TransferTarget{UserID: w.ID}); err != nil {
			t.Fatal(err)
		}
		acceptOffer(t, m, w, id)
		evs, _ := m.Chat.Transcript(ctx, id, 0, 0)
		ud, _ := m.Chat.UserData(ctx, id)
		if evs[len(evs)-1].Party.Name != "Agent walt" || len(ud) == 0 {
			t.Fatal("transcript or UserData lost in transfer")
		}
		wantCode(t, m.Agents.Transfer(ctx, v, id, agent.TransferTarget{Service: "second"}), "not_your_chat")
	})
}

// TestConcurrentCapacity routes many chats to few agents from two nodes at once, with several
// routers per node, and checks that no agent ever holds more chats than its capacity.
func TestConcurrentCapacity(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	slow := func(c *Config) { c.Router.RouteInterval = time.Hour } // only the goroutines below route
	a := startNode(t, db, slow, func(c *Config) { c.NodeID = "cap-a" })
	b := startNode(t, db, slow, func(c *Config) { c.NodeID = "cap-b" })
	ctx := context.Background()
	if err := a.DB.EnsureService(ctx, "busy", "Busy", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	const agents, capacity, chats = 6, 2, 40
	var users []agent.User
	for i := range agents {
		u := newAgent(t, a, fmt.Sprintf("cap%d", i), capacity, "busy")
		ready(t, a, u)
		users = append(users, u)
	}
	var ids []string
	for i := range chats {
		node := a
		if i%2 == 1 {
			node = b
		}
		_, d := startSession(t, node, map[string]any{"service": "busy"})
		ids = append(ids, d.str("session_id"))
	}

	stop := make(chan struct{})
	var maxLoad atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // watch the invariant while routing runs
		for {
			var m int64
			_ = a.DB.Pool.QueryRow(ctx, `SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM assignments
				WHERE state IN ('offered','active') GROUP BY user_id) x`).Scan(&m)
			if m > maxLoad.Load() {
				maxLoad.Store(m)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	var routers sync.WaitGroup
	for i := range 8 {
		node := []*Main{a, b}[i%2]
		routers.Go(func() {
			for range 20 {
				node.Router.RouteOnce(ctx)
			}
		})
	}
	// Agents accept whatever they are offered, concurrently with the routing.
	for _, u := range users {
		routers.Go(func() {
			for range 50 {
				as, _ := a.Agents.Assignments(ctx, u)
				for _, x := range as {
					if x.State == agent.AssignOffered {
						_, _ = b.Agents.Accept(ctx, u, x.InteractionID)
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	routers.Wait()
	close(stop)
	wg.Wait()

	if m := maxLoad.Load(); m > capacity {
		t.Fatalf("an agent held %d chats with capacity %d", m, capacity)
	}
	var assigned, queued int
	_ = a.DB.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state IN ('offered','active')), count(*) FILTER (WHERE state = 'queued')
		FROM interactions WHERE id = ANY($1)`, ids).Scan(&assigned, &queued)
	if assigned != agents*capacity || queued != chats-agents*capacity {
		t.Fatalf("%d assigned and %d queued, want %d and %d", assigned, queued, agents*capacity, chats-agents*capacity)
	}
	for _, u := range users {
		if n := load(t, a, u.ID); n != capacity {
			t.Fatalf("%s holds %d chats, want %d", u.Username, n, capacity)
		}
	}
}

// TestRoutingOrder: the oldest queued chat is offered first, to the agent idle the longest.
func TestRoutingOrder(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	m := startNodeAt(t, newDB(t), clock.Now, func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	for _, s := range []string{"idle", "oldest"} {
		if err := m.DB.EnsureService(ctx, s, s, chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
	}

	// Longest idle: both agents ready before any chat arrives; the one ready longer gets it.
	first := newAgent(t, m, "first", 1, "idle")
	second := newAgent(t, m, "second", 1, "idle")
	ready(t, m, first)
	clock.Advance(time.Second)
	ready(t, m, second)
	_, d := startSession(t, m, map[string]any{"service": "idle"})
	waitOffer(t, m, first, d.str("session_id"))

	// Oldest first: two chats wait; the agent who becomes ready gets the older one.
	_, older := startSession(t, m, map[string]any{"service": "oldest"})
	clock.Advance(time.Second)
	_, newer := startSession(t, m, map[string]any{"service": "oldest"})
	third := newAgent(t, m, "third", 1, "oldest")
	ready(t, m, third)
	waitOffer(t, m, third, older.str("session_id"))
	if _, err := m.Agents.Assignment(ctx, third, newer.str("session_id")); err == nil {
		t.Fatal("the newer chat was offered beyond capacity")
	}
}

// TestSurveyTemplateAndQuestions: a strategy can point SurveyURL at an external survey and ask its
// own questions on agentd's page.
func TestSurveyTemplateAndQuestions(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	for _, s := range []string{"external", "custom"} {
		if err := m.DB.EnsureService(ctx, s, s, chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
	}
	setStrategy(t, m, "external", agent.Strategy{Survey: &agent.Survey{URLTemplate: "https://survey.example/s?t={token}&chat={interactionId}"}})
	setStrategy(t, m, "custom", agent.Strategy{Survey: &agent.Survey{When: "routed", Questions: []agent.SurveyQuestion{
		{ID: "NPS", Label: "Would you recommend us?", Type: "scale"}, {ID: "Why", Label: "Why?", Type: "text"},
	}}})
	u := newAgent(t, m, "sue", 3, "external", "custom")
	ready(t, m, u)
	c1, d1 := startSession(t, m, map[string]any{"service": "external"})
	id1 := d1.str("session_id")
	acceptOffer(t, m, u, id1)
	got := mustOK(t, c1.do("get_userdata", map[string]any{"key": "SurveyURL"})).str("user_data", "SurveyURL")
	if !strings.HasPrefix(got, "https://survey.example/s?t=") || !strings.HasSuffix(got, "&chat="+id1) {
		t.Fatalf("templated SurveyURL %q", got)
	}

	c2, d2 := startSession(t, m, map[string]any{"service": "custom"})
	id2 := d2.str("session_id")
	acceptOffer(t, m, u, id2)
	url := mustOK(t, c2.do("get_userdata", map[string]any{"key": "SurveyURL"})).str("user_data", "SurveyURL")
	token := url[strings.LastIndex(url, "/")+1:]
	form, err := m.Surveys.Survey(ctx, token)
	if err != nil || len(form.Questions) != 2 || form.Questions[0].ID != "NPS" {
		t.Fatalf("survey form %+v %v", form, err)
	}
	if err := m.Surveys.SubmitSurvey(ctx, token, map[string]string{"NPS": "5", "Why": "Fast"}); err != nil {
		t.Fatal(err)
	}
	if udValue(m, id2, "Survey.NPS") != `"5"` || udValue(m, id2, "Survey.Why") != `"Fast"` {
		t.Fatal("custom answers not in UserData")
	}
}

// TestRoutingRaces runs accepts right at the offer deadline, with agents going offline and back,
// against routers on two nodes. Every outcome must be a clean one: the accept wins or the offer is
// gone, and every chat ends up queued, offered once or active once, never in between.
func TestRoutingRaces(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	fast := func(c *Config) { c.Router.RouteInterval = 10 * time.Millisecond }
	a := startNode(t, db, fast)
	b := startNode(t, db, fast)
	ctx := context.Background()
	if err := a.DB.EnsureService(ctx, "race", "Race", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	setStrategy(t, a, "race", agent.Strategy{AcceptTimeoutSeconds: 1})
	var users []agent.User
	for i := range 4 {
		u := newAgent(t, a, fmt.Sprintf("racer%d", i), 2, "race")
		ready(t, a, u)
		users = append(users, u)
	}
	var ids []string
	for range 16 {
		_, d := startSession(t, a, map[string]any{"service": "race"})
		ids = append(ids, d.str("session_id"))
	}
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for i, u := range users {
		node := []*Main{a, b}[i%2]
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				as, err := node.Agents.Assignments(ctx, u)
				if err != nil {
					t.Error(err)
					return
				}
				for _, x := range as {
					if x.State != agent.AssignOffered || x.ExpiresAt == nil {
						continue
					}
					time.Sleep(time.Until(x.ExpiresAt.Add(-time.Duration(n%3) * 5 * time.Millisecond)))
					if _, err := node.Agents.Accept(ctx, u, x.InteractionID); err != nil {
						if code := agentd.ErrorCode(err); code != "offer_gone" && code != "not_your_chat" {
							t.Errorf("accept at the deadline: %v", err)
						}
					}
				}
				if n%7 == 3 {
					if _, err := node.Agents.SetState(ctx, u, agent.StateOffline, ""); err != nil {
						t.Errorf("offline: %v", err)
					}
				}
				if _, err := node.Agents.SetState(ctx, u, agent.StateReady, ""); err != nil {
					t.Errorf("ready: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	var bad int
	if err := a.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM interactions i WHERE i.id = ANY($1) AND NOT (
		(i.state = 'queued' AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.interaction_id = i.id AND x.state IN ('offered', 'active')))
		OR (i.state = 'offered' AND (SELECT count(*) FROM assignments x WHERE x.interaction_id = i.id AND x.state = 'offered') = 1)
		OR (i.state = 'active' AND (SELECT count(*) FROM assignments x WHERE x.interaction_id = i.id AND x.state = 'active') = 1))`,
		ids).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d chats in an inconsistent routing state", bad)
	}
	for _, u := range users {
		if n := load(t, a, u.ID); n > 2 {
			t.Fatalf("%s holds %d chats with capacity 2", u.Username, n)
		}
	}
}

// TestRoutingNoHeadOfLine: chats waiting in a service nobody can take do not hold back the chats
// of other services, and an agent with free capacity is found however many full agents have been
// idle longer.
func TestRoutingNoHeadOfLine(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	for _, s := range []string{"unstaffed", "staffed", "busy"} {
		if err := m.DB.EnsureService(ctx, s, s, chat.Strategy{}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	start := func(service string) string {
		t.Helper()
		n++
		s, err := m.Chat.Start(ctx, chat.StartParams{CommandID: fmt.Sprintf("head-of-line-%06d-0123456789abcdef", n), Service: service, Username: "Queued"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Interaction.ID
	}

	// More older chats than one routing pass looks at, in a service without agents.
	for range 120 {
		start("unstaffed")
	}
	sam := newAgent(t, m, "sam", 1, "staffed")
	ready(t, m, sam)
	waitOffer(t, m, sam, start("staffed"))

	// Twelve agents at capacity, all idle longer than the one who still has room.
	for i := range 12 {
		u := newAgent(t, m, fmt.Sprintf("full%02d", i), 1, "busy")
		ready(t, m, u)
		id := start("busy")
		acceptOffer(t, m, u, id)
	}
	free := newAgent(t, m, "free", 1, "busy")
	ready(t, m, free)
	waitOffer(t, m, free, start("busy"))

	// More older chats than one routing transaction takes, all declined by the only agent (just
	// now: within the decline cool-down): the newer chat the agent has not declined is still
	// offered.
	if err := m.DB.EnsureService(ctx, "picky", "picky", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	solo := newAgent(t, m, "solo", 1, "picky")
	for range 15 {
		id := start("picky")
		if _, err := m.DB.Pool.Exec(ctx, `INSERT INTO assignments (interaction_id, user_id, state, finished_at) VALUES ($1, $2, 'declined', now())`, id, solo.ID); err != nil {
			t.Fatal(err)
		}
	}
	ready(t, m, solo)
	waitOffer(t, m, solo, start("picky"))
}

// TestFullUserDataDoesNotBlockTheAgent: a page that filled its UserData to every limit must not
// keep the chat from being accepted (routed UserData, SurveyURL), co-browsed, wrapped up
// (Disposition) or surveyed.
func TestFullUserDataDoesNotBlockTheAgent(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{
		RoutedUserData: map[string]string{"Queue": "{service}"}, Dispositions: []string{"Resolved"}, DispositionRequired: true,
		Survey: &agent.Survey{When: "routed"},
	})
	u := newAgent(t, m, "fay", 1)
	ready(t, m, u)

	c, d := startSession(t, m, nil)
	id := d.str("session_id")
	lim := m.Chat.Config().UserDataLimits
	var existing int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM userdata WHERE interaction_id = $1`, id).Scan(&existing); err != nil {
		t.Fatal(err)
	}
	fill := map[string]any{"CoBrowseSessionId": "CB-1"}
	for i := range lim.MaxKeys - existing - 1 {
		fill[fmt.Sprintf("K%03d", i)] = "v"
	}
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": fill}))
	mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"OneMore": "x"}}), "userdata_too_many_keys")

	waitOffer(t, m, u, id)
	if _, err := m.Agents.Accept(ctx, u, id); err != nil {
		t.Fatalf("accept with full UserData: %v", err)
	}
	if udValue(m, id, "Queue") != `"default"` || udValue(m, id, "SurveyURL") == "" {
		t.Fatal("routed UserData not written")
	}
	if err := m.Agents.CoBrowseJoined(ctx, u, id, "CB-1"); err != nil {
		t.Fatalf("co-browse write-back with full UserData: %v", err)
	}
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, u, id, "Resolved", ""); err != nil {
		t.Fatalf("wrap-up with full UserData: %v", err)
	}
	url := udValue(m, id, "SurveyURL")
	token := strings.Trim(url[strings.LastIndex(url, "/")+1:], `"`)
	if err := m.Surveys.SubmitSurvey(ctx, token, map[string]string{"CSAT": "5", "Comment": "Quick"}); err != nil {
		t.Fatalf("survey with full UserData: %v", err)
	}
	if udValue(m, id, "Disposition") != `"Resolved"` || udValue(m, id, "Survey.CSAT") == "" {
		t.Fatal("wrap-up or survey answers missing")
	}
}

// TestTransferToAgentWaitsForRouter: a router that happens to hold the target agent's row lock
// (it looks at ready agents all the time) must delay a transfer to that agent, not fail it with
// agent_unavailable.
func TestTransferToAgentWaitsForRouter(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	from := newAgent(t, m, "gil", 1)
	to := newAgent(t, m, "hal", 1)
	ready(t, m, from)
	_, id := acceptedChat(t, m, from, nil)
	ready(t, m, to)

	// Hold the target's row lock as a routing transaction would, for a moment.
	tx, err := m.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // also when the test fails: the node's pool closes only when it is back
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, to.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Agents.Transfer(ctx, from, id, agent.TransferTarget{UserID: to.ID}) }()
	select {
	case err := <-done:
		t.Fatalf("transfer did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("transfer: %v", err)
	}
	waitOffer(t, m, to, id)
}

// TestPendingSince: the pending-response clock starts at the oldest customer message no one has
// answered, is not moved by more customer messages, and stops at the agent's answer.
func TestPendingSince(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	u := newAgent(t, m, "pia", 1)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	pending := func() *time.Time {
		t.Helper()
		a, err := m.Agents.Assignment(ctx, u, id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Interaction.PendingSince
	}
	if p := pending(); p != nil {
		t.Fatalf("pending before any message: %v", p)
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "first"}))
	first := pending()
	if first == nil {
		t.Fatal("a customer message did not start the clock")
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "second"}))
	if p := pending(); p == nil || !p.Equal(*first) {
		t.Fatalf("a second customer message moved the clock: %v, want %v", p, first)
	}
	if _, err := m.Agents.Send(ctx, u, id, "", "answer"); err != nil {
		t.Fatal(err)
	}
	if p := pending(); p != nil {
		t.Fatalf("the agent's answer did not stop the clock: %v", p)
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "third"}))
	if p := pending(); p == nil || !p.After(*first) {
		t.Fatalf("a new question after the answer: %v", p)
	}
}

// TestPassedOnChatsComeBack (first-time user: "a missed or declined offer is a dead end"): with a
// single agent, a chat they missed is offered again once they are Ready again, and a chat they
// declined after the strategy's cool-down; agents who passed on a chat get it only when no one
// else can take it. Before, both were never offered to that agent again and the customer waited
// forever.
func TestPassedOnChatsComeBack(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	// No periodic passes: the router runs when woken, and the test runs passes of its own.
	m := startNodeAt(t, newDB(t), clock.Now, func(c *Config) { c.Router.RouteInterval = time.Hour })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{AcceptTimeoutSeconds: 30, DeclineCooldownSeconds: 60})
	offered := func(u agent.User, id string) bool {
		a, err := m.Agents.Assignment(ctx, u, id)
		return err == nil && a.State == agent.AssignOffered
	}

	t.Run("MissedThenReady", func(t *testing.T) {
		solo := newAgent(t, m, "solo", 1)
		ready(t, m, solo)
		_, d := startSession(t, m, nil)
		id := d.str("session_id")
		waitOffer(t, m, solo, id)
		clock.Advance(31 * time.Second)
		routeUntil(t, m, "the offer to time out", func() bool { return !offered(solo, id) }) // solo is set not ready
		if u, _ := m.Accounts.User(ctx, solo.ID); u.State != agent.StateNotReady || offered(solo, id) {
			t.Fatalf("after the missed offer: %s, offered %v", u.State, offered(solo, id))
		}
		ready(t, m, solo)
		waitOffer(t, m, solo, id)
		acceptOffer(t, m, solo, id)
		if err := m.Agents.End(ctx, solo, id); err != nil {
			t.Fatal(err)
		}
		if err := m.Agents.WrapUp(ctx, solo, id, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Agents.SetState(ctx, solo, agent.StateOffline, ""); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("DeclinedAfterCooldown", func(t *testing.T) {
		dee := newAgent(t, m, "dee", 1)
		ready(t, m, dee)
		_, d := startSession(t, m, nil)
		id := d.str("session_id")
		waitOffer(t, m, dee, id)
		if err := m.Agents.Decline(ctx, dee, id); err != nil {
			t.Fatal(err)
		}
		clock.Advance(59 * time.Second)
		m.Router.RouteOnce(ctx)
		if offered(dee, id) {
			t.Fatal("a declined chat came back before the cool-down")
		}
		clock.Advance(2 * time.Second)
		routeUntil(t, m, "the declined chat back after the cool-down, with no one else to take it", func() bool { return offered(dee, id) })
		if err := m.Agents.Decline(ctx, dee, id); err != nil {
			t.Fatal(err)
		}

		// Someone who never passed on it comes first, even though dee has been idle longer.
		clock.Advance(61 * time.Second)
		cal := newAgent(t, m, "cal", 1)
		ready(t, m, cal) // wakes the router: dee may be offered it again, but cal comes first
		waitOffer(t, m, cal, id)
		if offered(dee, id) {
			t.Fatal("the chat went back to the agent who declined it while another could take it")
		}
	})
}

// TestPickUp (first-time user): an agent takes the oldest chat waiting in one of their services
// from the queue list, within their capacity, whether ready or not.
func TestPickUp(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = time.Hour })
	ctx := context.Background()
	if err := m.DB.EnsureService(ctx, "vip", "VIP", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	setStrategy(t, m, "default", agent.Strategy{RoutedUserData: map[string]string{"Queue": "{service}"}})
	pia := newAgent(t, m, "pia", 1) // not ready: nothing is offered to her
	c1, d1 := startSession(t, m, nil)
	_, d2 := startSession(t, m, nil)
	_, err := m.Agents.PickUp(ctx, pia, "vip")
	wantCode(t, err, "not_your_service")
	id, err := m.Agents.PickUp(ctx, pia, "default")
	if err != nil || id != d1.str("session_id") {
		t.Fatalf("pick up: %q %v, want the oldest chat %s", id, err, d1.str("session_id"))
	}
	if a, err := m.Agents.Assignment(ctx, pia, id); err != nil || a.State != agent.AssignActive {
		t.Fatalf("picked chat: %+v %v", a, err)
	}
	c1.waitEvent("agent joined", func(ev frame) bool { return ev.str("party", "name") == "Agent pia" })
	if v := udValue(m, id, "Queue"); v != `"default"` {
		t.Fatalf("routed UserData of a picked chat: %s", v)
	}
	// Her capacity is 1: the next one is refused and stays queued.
	_, err = m.Agents.PickUp(ctx, pia, "default")
	wantCode(t, err, "agent_full")
	if in, _ := m.Chat.Interaction(ctx, d2.str("session_id")); in.State != "queued" {
		t.Fatalf("the refused chat is %s", in.State)
	}
	if err := m.Agents.End(ctx, pia, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, pia, id, "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Agents.PickUp(ctx, pia, "default"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Agents.PickUp(ctx, newAgent(t, m, "quinn", 2), "default")
	wantCode(t, err, "queue_empty")
}

// TestBrowserPickUp: the queue list's "Pick up" button takes the oldest waiting chat; the agent
// need not be ready, and the page passes axe with the button shown.
func TestBrowserPickUp(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = time.Hour })
	newAgent(t, m, "pat", 2)
	tab := newTab(t, newBrowser(t))
	consoleFor(t, tab, m.URL(), "pat")
	c, d := startSession(t, m, map[string]any{"username": "Waiting Wanda"})
	id := d.str("session_id")
	poll(t, tab, "the Pick up button", `!!document.querySelector('#queues button[data-cmd=pick_up][data-service=default]')`)
	checkAxe(t, tab, "console with a chat waiting")
	click(t, tab, `#queues button[data-cmd=pick_up][data-service=default]`)
	poll(t, tab, "the picked chat's panel", `!!document.getElementById('chat-`+id+`') && !!document.getElementById('message-`+id+`')`)
	c.waitEvent("agent joined", func(ev frame) bool { return ev.str("kind") == "party_joined" && ev.str("party", "name") == "Agent pat" })
	poll(t, tab, "the queue empty again", `!document.querySelector('#queues button[data-cmd=pick_up]')`)
}
