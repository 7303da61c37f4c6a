package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/notify"
)

// stream is a test client of the event stream.
type stream struct {
	t  *testing.T
	ws *websocket.Conn
}

// dialStream opens /api/v1/events on m with query, the token in the Authorization header (none
// when token is empty).
func dialStream(t *testing.T, m *Main, query url.Values, token string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := strings.Replace(m.URL(), "http", "ws", 1) + "/api/v1/events"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, h)
	if ws != nil {
		t.Cleanup(func() { _ = ws.Close() })
	}
	return ws, resp, err
}

// openStream dials and reads the subscribed frame.
func openStream(t *testing.T, m *Main, query url.Values, token string) (*stream, string) {
	t.Helper()
	ws, resp, err := dialStream(t, m, query, token)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	s := &stream{t: t, ws: ws}
	f := s.frame()
	if f["type"] != "subscribed" {
		t.Fatalf("first frame %v, want subscribed", f)
	}
	return s, f["position"].(string)
}

func (s *stream) frame() map[string]any {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := s.ws.ReadMessage()
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		s.t.Fatal(err)
	}
	return f
}

// until reads events until cond holds for what was read, and returns them.
func (s *stream) until(what string, cond func([]notify.Event) bool) []notify.Event {
	s.t.Helper()
	var got []notify.Event
	for !cond(got) {
		f := s.frame()
		if f["type"] != "event" {
			s.t.Fatalf("waiting for %s: frame %v", what, f)
		}
		b, _ := json.Marshal(f["event"])
		var e notify.Event
		if err := json.Unmarshal(b, &e); err != nil {
			s.t.Fatal(err)
		}
		got = append(got, e)
	}
	return got
}

func messages(n int) func([]notify.Event) bool {
	return func(evs []notify.Event) bool {
		c := 0
		for _, e := range evs {
			if e.Type == notify.MessageCreated {
				c++
			}
		}
		return c >= n
	}
}

func texts(evs []notify.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type == notify.MessageCreated {
			var d struct{ Text string }
			_ = json.Unmarshal(e.Data, &d)
			out = append(out, d.Text)
		}
	}
	return out
}

// TestEventStreamResume: events arrive live and in order; after a disconnect, a stream resumed
// from the last position it got, on another node of the same database, gets every event
// committed meanwhile, none twice; a stream from an old position gets everything after it.
func TestEventStreamResume(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	b := startNode(t, db)
	u := newAgent(t, a, "olga", 2)
	ready(t, a, u)
	c, id := acceptedChat(t, a, u, nil)
	token := apiToken(t, a, "plugin", "events", "")

	s, _ := openStream(t, a, url.Values{"interaction": {id}, "types": {"message.created"}}, token)
	mustOK(t, c.do("send_message", map[string]any{"text": "m1"}))
	mustOK(t, c.do("send_message", map[string]any{"text": "m2"}))
	got := s.until("m1, m2", messages(2))
	if !slices.Equal(texts(got), []string{"m1", "m2"}) {
		t.Fatalf("live: %v", texts(got))
	}
	last := got[len(got)-1].Position
	_ = s.ws.Close()

	// Meanwhile, messages from the customer and the agent, concurrently (the customer's from
	// this goroutine: a test client is not safe for concurrent use).
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 5 {
			if _, err := a.Agents.Send(context.Background(), u, id, fmt.Sprintf("console:%d", i), fmt.Sprintf("a%d", i)); err != nil {
				t.Error(err)
			}
		}
	})
	for i := range 5 {
		mustOK(t, c.do("send_message", map[string]any{"text": fmt.Sprintf("c%d", i)}))
	}
	wg.Wait()

	r, start := openStream(t, b, url.Values{"interaction": {id}, "types": {"message.created"}, "from": {last.String()}}, token)
	if start != last.String() {
		t.Fatalf("resumed at %s, asked for %s", start, last)
	}
	resumed := r.until("the 10 messages sent meanwhile", messages(10))
	seen := map[string]bool{}
	for _, e := range resumed {
		if seen[e.ID] || !last.Less(e.Position) {
			t.Fatalf("event %s (%s) twice or not after %s", e.ID, e.Position, last)
		}
		seen[e.ID] = true
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "m3"}))
	if got := texts(r.until("m3", messages(1))); !slices.Equal(got, []string{"m3"}) {
		t.Fatalf("after the catch-up: %v, want only m3", got)
	}

	// From the start: everything, in the order the log has it.
	all, _ := openStream(t, b, url.Values{"interaction": {id}, "from": {"0"}}, token)
	evs := all.until("every message", messages(13))
	if evs[0].Type != notify.InteractionQueued {
		t.Fatalf("from 0 the first event is %s, want interaction.queued", evs[0].Type)
	}
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Less(evs[i].Position) {
			t.Fatalf("positions out of order at %d", i)
		}
	}
}

// TestEventStreamFilters: service, agent, types and a user-bound token's own agent.
func TestEventStreamFilters(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	full := apiToken(t, m, "all-events", "events", "")
	alicePlugin := apiToken(t, m, "alice-events", "events", "alice")

	byAgent, start := openStream(t, m, url.Values{"agent": {"bob"}, "types": {"message.created"}}, full)
	bound, _ := openStream(t, m, nil, alicePlugin)
	mustOK(t, w.aliceCustomer.do("send_message", map[string]any{"text": "to alice"}))
	if _, err := m.Agents.Send(context.Background(), w.bob, w.bobChat, "console:x", "from bob"); err != nil {
		t.Fatal(err)
	}
	if got := byAgent.until("bob's message", messages(1)); texts(got)[0] != "from bob" || got[0].InteractionID != w.bobChat {
		t.Fatalf("agent=bob got %v", texts(got))
	}
	// The bound token's stream sees alice's chat only.
	got := bound.until("alice's message", messages(1))
	for _, e := range got {
		if e.InteractionID != w.aliceChat {
			t.Fatalf("a token bound to alice got an event of %s", e.InteractionID)
		}
	}
	// Nothing for an unknown service, nor for bob's chats on alice's token (which asks for them):
	// streams opened from the same start, now that the messages are committed, read them in their
	// first refresh; the next frame is the error we trigger with a bad subscribe.
	other, _ := openStream(t, m, url.Values{"service": {"nosuchservice"}, "from": {start}}, full)
	boundBob, _ := openStream(t, m, url.Values{"agent": {"bob"}, "from": {start}}, alicePlugin)
	for name, s := range map[string]*stream{"unknown service": other, "alice's token asking for bob": boundBob} {
		if err := s.ws.WriteJSON(map[string]any{"type": "subscribe", "from": "now", "types": []string{"nope"}}); err != nil {
			t.Fatal(err)
		}
		if f := s.frame(); f["type"] != "error" || f["error"].(map[string]any)["code"] != "invalid_argument" {
			t.Fatalf("%s: got %v before the bad subscribe's error", name, f)
		}
	}
}

// TestEventStreamAuth: no token, unknown, revoked and wrong-scope tokens; a token in the URL;
// first-frame authentication; bad frames.
func TestEventStreamAuth(t *testing.T) {
	t.Parallel()
	w := newAPIWorld(t)
	m := w.m
	events := apiToken(t, m, "ev", "events", "")
	readOnly := apiToken(t, m, "ro", "read", "")
	revoked := apiToken(t, m, "gone", "events", "")
	if err := m.Tokens.RevokeToken(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		q      url.Values
		token  string
		status int
		code   string
	}{
		"ErrUnknown":    {nil, "agd_" + strings.Repeat("x", 43), 401, "unauthorized"},
		"ErrRevoked":    {nil, revoked, 401, "unauthorized"},
		"ErrScope":      {nil, readOnly, 403, "insufficient_scope"},
		"ErrTokenInURL": {url.Values{"token": {events}}, events, 401, "token_in_url"},
		"ErrPosition":   {url.Values{"from": {"yesterday"}}, events, 400, "invalid_position"},
		"ErrType":       {url.Values{"types": {"message.sent"}}, events, 400, "invalid_argument"},
	} {
		t.Run(name, func(t *testing.T) {
			_, resp, err := dialStream(t, m, c.q, c.token)
			if err == nil || resp == nil {
				t.Fatalf("connected: %v", err)
			}
			defer resp.Body.Close()
			var body struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != c.status || body.Error.Code != c.code {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body.Error.Code, c.status, c.code)
			}
		})
	}
	t.Run("OK_FirstFrame", func(t *testing.T) {
		ws, _, err := dialStream(t, m, url.Values{"interaction": {w.aliceChat}, "from": {"0"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		s := &stream{t: t, ws: ws}
		if err := ws.WriteJSON(map[string]any{"type": "subscribe"}); err != nil {
			t.Fatal(err)
		}
		if f := s.frame(); f["type"] != "error" || f["error"].(map[string]any)["code"] != "unauthorized" {
			t.Fatalf("subscribe before auth: %v", f)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		if f := s.frame(); f["error"].(map[string]any)["code"] != "bad_frame" {
			t.Fatalf("bad frame: %v", f)
		}
		if err := ws.WriteJSON(map[string]any{"type": "auth", "token": events}); err != nil {
			t.Fatal(err)
		}
		if f := s.frame(); f["type"] != "subscribed" || f["position"] != "0" {
			t.Fatalf("after auth: %v", f)
		}
		if evs := s.until("the chat's first event", func(e []notify.Event) bool { return len(e) > 0 }); evs[0].InteractionID != w.aliceChat {
			t.Fatalf("got %v", evs[0])
		}
	})
	for name, token := range map[string]string{"ErrFirstFrameScope": readOnly, "ErrFirstFrameRevoked": revoked} {
		t.Run(name, func(t *testing.T) {
			ws, _, err := dialStream(t, m, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			s := &stream{t: t, ws: ws}
			if err := ws.WriteJSON(map[string]any{"type": "auth", "token": token}); err != nil {
				t.Fatal(err)
			}
			if f := s.frame(); f["type"] != "error" {
				t.Fatalf("auth with a bad token: %v", f)
			}
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = ws.ReadMessage()
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("after a refused auth frame: %v, want close 1008", err)
			}
		})
	}
}

// TestEventStreamShutdown: streams close with the node (1001, so clients reconnect elsewhere);
// TestMain's goleak check finds any goroutine a stream left behind.
func TestEventStreamShutdown(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	token := apiToken(t, m, "ev", "events", "")
	s, _ := openStream(t, m, nil, token)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_ = s.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := s.ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("stream at shutdown: %v, want 1001", err)
	}
}

// TestEventStreamPruned: events older than the retention are pruned with their deliveries; a
// stream resumed from before the newest pruned position is told so (position_expired) instead of
// silently missing events, and one from 0 gets what is kept.
func TestEventStreamPruned(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	ctx := context.Background()
	u := newAgent(t, m, "olga", 2)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	mustOK(t, c.do("send_message", map[string]any{"text": "old"}))
	old := chatEvents(t, m, id)
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE integration_events SET created_at = now() - interval '40 days'`); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.do("send_message", map[string]any{"text": "new"}))
	n, err := m.DB.PruneEvents(ctx, 30*24*time.Hour)
	if err != nil || n != int64(len(old)) {
		t.Fatalf("pruned %d (%v), want the %d old events", n, err, len(old))
	}
	token := apiToken(t, m, "ev", "events", "")
	_, resp, err := dialStream(t, m, url.Values{"from": {old[0].Position.String()}}, token)
	if err == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("resume from a pruned position: %v %v, want 409", err, resp)
	}
	var body struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Error.Code != "position_expired" {
		t.Fatalf("code %q, want position_expired", body.Error.Code)
	}
	s, _ := openStream(t, m, url.Values{"from": {"0"}, "interaction": {id}, "types": {"message.created"}}, token)
	if got := texts(s.until("the kept message", messages(1))); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("from 0 after the prune: %v, want [new]", got)
	}
	// Resuming from the last pruned position itself loses nothing: allowed.
	if _, _, err := dialStream(t, m, url.Values{"from": {old[len(old)-1].Position.String()}}, token); err != nil {
		t.Fatalf("resume from the newest pruned position: %v", err)
	}
}

// TestEventStreamRevoked: revoking a token closes its open streams (within five polls), whether
// it came in the header or in the first frame.
func TestEventStreamRevoked(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	header := apiToken(t, m, "by-header", "events", "")
	frame := apiToken(t, m, "by-frame", "events", "")
	a, _ := openStream(t, m, nil, header)
	ws, _, err := dialStream(t, m, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b := &stream{t: t, ws: ws}
	if err := ws.WriteJSON(map[string]any{"type": "auth", "token": frame}); err != nil {
		t.Fatal(err)
	}
	if f := b.frame(); f["type"] != "subscribed" {
		t.Fatalf("after auth: %v", f)
	}
	for _, name := range []string{"by-header", "by-frame"} {
		if err := m.Tokens.RevokeToken(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range map[string]*stream{"header": a, "first frame": b} {
		if f := s.frame(); f["type"] != "error" || f["error"].(map[string]any)["code"] != "unauthorized" {
			t.Fatalf("%s: %v, want the revocation's error", name, f)
		}
		_, _, err := s.ws.ReadMessage()
		if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
			t.Fatalf("%s: %v, want close 1008", name, err)
		}
	}
}
