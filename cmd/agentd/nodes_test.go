package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/chat"
	"agentd/userdata"
)

// TestTwoNodes runs two nodes on one database: the customer is connected to node A while every
// agent operation goes through node B, and the other way round.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, func(c *Config) { c.NodeID = "node-a" })
	b := startNode(t, db, func(c *Config) { c.NodeID = "node-b" })
	ctx := context.Background()

	c, data := startSession(t, a, nil)
	id := data.str("session_id")
	agent := agentJoin(t, b, id)
	c.waitEvent("agent joined via B", func(ev frame) bool { return ev.str("kind") == "party_joined" && ev.str("party", "type") == "agent" })
	for i := range 5 {
		if _, err := b.Chat.Send(ctx, agent, "", fmt.Sprintf("from B %d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Chat.SendTyping(ctx, agent, true, "typing on B"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Chat.SendNotice(ctx, agent, "", json.RawMessage(`"hello from B"`)); err != nil {
		t.Fatal(err)
	}
	visible := true
	if _, err := b.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "SurveyURL", Value: "https://s.example/x", Visible: &visible}}); err != nil {
		t.Fatal(err)
	}
	c.waitEvent("last message from B", func(ev frame) bool { return ev.str("content", "text") == "from B 4" })
	c.waitFrame("typing from B", func(f frame) bool { return f["type"] == "typing" && f.str("text") == "typing on B" })
	c.waitFrame("notice from B", func(f frame) bool { return f["type"] == "notice" && f.str("payload") == "hello from B" })
	c.waitFrame("userdata from B", func(f frame) bool {
		return f["type"] == "userdata" && f.str("changes", "SurveyURL") == "https://s.example/x"
	})

	// Every event arrived once, in order, with no gap.
	evs := c.events()
	for i, ev := range evs {
		if ev.num("index") != i {
			t.Fatalf("event %d has index %d: %v", i, ev.num("index"), evs)
		}
	}

	// The customer's message on A is in Postgres for the agent side on B.
	mustOK(t, c.do("send_message", map[string]any{"text": "from the customer on A"}))
	got, err := b.Chat.Transcript(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; last.Text != "from the customer on A" {
		t.Fatalf("B sees last event %+v", last)
	}

	// A customer connection on B sees what happens through A too (restore on the other node).
	r := dial(t, b, nil)
	mustOK(t, r.do("restore", map[string]any{"session_id": id, "secure_key": data.str("secure_key"), "from_index": len(got)}))
	if _, err := a.Chat.Send(ctx, agent, "", "through A now", ""); err != nil {
		t.Fatal(err)
	}
	r.waitEvent("message through A on B's socket", func(ev frame) bool { return ev.str("content", "text") == "through A now" })
	c.waitEvent("message through A on A's socket", func(ev frame) bool { return ev.str("content", "text") == "through A now" })
}

// TestListenResync kills node A's LISTEN connection: events committed meanwhile on node B must
// still reach A's customer, read back from Postgres after A reconnects.
func TestListenResync(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, func(c *Config) { c.NodeID = "resync-a" })
	b := startNode(t, db, func(c *Config) { c.NodeID = "resync-b" })
	ctx := context.Background()

	c, data := startSession(t, a, nil)
	agent := agentJoin(t, b, data.str("session_id"))
	c.waitEvent("agent joined", func(ev frame) bool { return ev.str("party", "type") == "agent" })

	var killed int
	if err := b.DB.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'agentd-listen:resync-a'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate A's LISTEN backend: %d, %v", killed, err)
	}
	waitFor(t, "A's listener to notice", func() bool { return !a.Listener.Connected() })
	if _, err := b.Chat.Send(ctx, agent, "", "sent while A was deaf", ""); err != nil {
		t.Fatal(err)
	}
	c.waitEvent("message sent while A's LISTEN was down", func(ev frame) bool { return ev.str("content", "text") == "sent while A was deaf" })
	waitFor(t, "A's listener back", func() bool { return a.Listener.Connected() })
}

// TestConcurrentWriters checks that the transcript index stays contiguous, with nothing lost or
// duplicated, when customer and agents write at once, and that the customer receives all of it.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, func(c *Config) { c.NodeID = "cw-a" })
	b := startNode(t, db, func(c *Config) { c.NodeID = "cw-b" })
	ctx := context.Background()
	c, data := startSession(t, a, nil)
	id := data.str("session_id")
	agents := []chat.Party{agentJoin(t, a, id), agentJoin(t, b, id)}
	nodes := []*Main{a, b}

	const perWriter = 25
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := nodes[w%2].Chat.Send(ctx, agents[w%2], "", fmt.Sprintf("w%d-%d", w, i), ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range perWriter {
		mustOK(t, c.do("send_message", map[string]any{"text": fmt.Sprintf("c-%d", i)}))
	}
	wg.Wait()
	evs, err := a.Chat.Transcript(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, ev := range evs {
		if ev.Index != i {
			t.Fatalf("index %d at position %d", ev.Index, i)
		}
		if ev.Kind == chat.EventMessage {
			if seen[ev.Text] {
				t.Fatalf("duplicate %q", ev.Text)
			}
			seen[ev.Text] = true
		}
	}
	if len(seen) != 5*perWriter {
		t.Fatalf("%d messages stored, want %d", len(seen), 5*perWriter)
	}
	last := evs[len(evs)-1].Index
	c.waitEvent("every event", func(ev frame) bool { return ev.num("index") == last })
	got := c.events()
	if len(got) != len(evs) {
		t.Fatalf("customer received %d events, transcript has %d", len(got), len(evs))
	}
	for i, ev := range got {
		if ev.num("index") != i {
			t.Fatalf("customer got index %d at position %d", ev.num("index"), i)
		}
	}
}

// TestShutdownGoingAway checks that a node closing down tells clients "going away" (1001) so
// they reconnect, and that the session resumes on another node.
func TestShutdownGoingAway(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	a := startNode(t, db, func(c *Config) { c.NodeID = "sd-a" })
	b := startNode(t, db, func(c *Config) { c.NodeID = "sd-b" })
	c, data := startSession(t, a, nil)
	mustOK(t, c.do("send_message", map[string]any{"text": "before shutdown"}))
	done := make(chan struct{})
	go func() { _ = a.Close(); close(done) }()
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("socket not closed at shutdown")
	}
	<-done
	if c.close == nil || c.close.Code != websocket.CloseGoingAway {
		t.Fatalf("close at shutdown: %v", c.close)
	}
	r := dial(t, b, nil)
	res := mustOK(t, r.do("restore", map[string]any{"session_id": data.str("session_id"), "secure_key": data.str("secure_key")}))
	r.waitEvent("history on the other node", func(ev frame) bool { return ev.str("content", "text") == "before shutdown" })
	if res.num("next_index") < 3 {
		t.Fatalf("restore next_index %d", res.num("next_index"))
	}
}
