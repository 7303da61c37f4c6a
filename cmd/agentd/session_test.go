package main

import (
	"context"
	"encoding/json"
	"testing"

	"agentd/chat"
	"agentd/userdata"
)

func agentJoin(t testing.TB, m *Main, interactionID string) chat.Party {
	t.Helper()
	p, err := m.Chat.JoinAgent(context.Background(), interactionID, chat.PartyAgent, "Alice", "user-1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSession(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()

	t.Run("OK_ChatBothWays", func(t *testing.T) {
		c, data := startSession(t, m, map[string]any{"username": "Carol", "subject": "Billing", "user_data": map[string]any{"FirstName": "Carol", "Age": 41}})
		id := data.str("session_id")
		if data.str("secure_key") == "" || data.str("party", "type") != "client" || data.str("state") != "queued" {
			t.Fatalf("bad start data: %v", data)
		}
		c.waitEvent("customer joined", func(ev frame) bool { return ev.num("index") == 0 && ev.str("kind") == "party_joined" })
		c.waitEvent("welcome notice", func(ev frame) bool {
			return ev.num("index") == 1 && ev.str("kind") == "notice" && ev.str("content", "type") == "notice"
		})
		c.waitFrame("queue position", func(f frame) bool { return f["type"] == "queue" && f.num("position") == 1 })

		sent := mustOK(t, c.do("send_message", map[string]any{"text": "Hello <b>there</b>"}))
		if sent.num("index") != 2 || sent.num("timestamp") == 0 {
			t.Fatalf("send result: %v", sent)
		}
		agent := agentJoin(t, m, id)
		c.waitEvent("agent joined", func(ev frame) bool {
			return ev.str("kind") == "party_joined" && ev.str("party", "type") == "agent" && ev.str("party", "name") == "Alice"
		})
		if _, err := m.Chat.Send(ctx, agent, "", "Hi Carol, how can I help?", ""); err != nil {
			t.Fatal(err)
		}
		c.waitEvent("agent message", func(ev frame) bool {
			return ev.str("kind") == "message" && ev.str("content", "text") == "Hi Carol, how can I help?" && ev.str("party", "type") == "agent"
		})
		if _, err := m.Chat.SendTyping(ctx, agent, true, "I am look"); err != nil {
			t.Fatal(err)
		}
		c.waitFrame("agent typing", func(f frame) bool {
			return f["type"] == "typing" && f["is_typing"] == true && f.str("text") == "I am look"
		})
		if _, err := m.Chat.SendNotice(ctx, agent, "", json.RawMessage(`{"cobrowse":"joined"}`)); err != nil {
			t.Fatal(err)
		}
		c.waitFrame("agent notice", func(f frame) bool { return f["type"] == "notice" && f.str("payload", "cobrowse") == "joined" })
		visible := true
		if _, err := m.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "SurveyURL", Value: "https://survey.example/1", Visible: &visible}, {Key: "Internal", Value: "secret"}}); err != nil {
			t.Fatal(err)
		}
		c.waitFrame("visible userdata", func(f frame) bool {
			return f["type"] == "userdata" && f.str("changes", "SurveyURL") == "https://survey.example/1"
		})
		got := mustOK(t, c.do("get_userdata", map[string]any{"key": "Internal"}))
		if got.str("user_data") != "{}" {
			t.Fatalf("hidden key leaked: %v", got)
		}
		got = mustOK(t, c.do("get_userdata", map[string]any{"key": "FirstName"}))
		if got.str("user_data", "FirstName") != "Carol" {
			t.Fatalf("get FirstName: %v", got)
		}
		for _, f := range c.snapshot() {
			if f["type"] == "userdata" && f.str("changes", "Internal") != "" {
				t.Fatalf("hidden key pushed to the customer: %v", f)
			}
			if f["type"] == "typing" && f.str("party", "type") == "client" {
				t.Fatalf("customer got its own typing: %v", f)
			}
		}

		// The agent side sees it all in Postgres.
		evs, err := m.Chat.Transcript(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range evs {
			if ev.Index != i {
				t.Fatalf("transcript index %d at position %d", ev.Index, i)
			}
		}
		if evs[2].Text != "Hello <b>there</b>" || evs[2].Party.Type != chat.PartyClient {
			t.Fatalf("customer message stored as %+v", evs[2])
		}
		ud, err := m.Chat.UserData(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		owners := map[string]userdata.Owner{}
		for _, e := range ud {
			owners[e.Key] = e.Owner
		}
		if owners["FirstName"] != userdata.OwnerClient || owners["SurveyURL"] != userdata.OwnerAgent || owners["Age"] != userdata.OwnerClient {
			t.Fatalf("owners: %v", owners)
		}

		// End by the agent: the customer sees session_ended, can still read, cannot write.
		if err := m.Chat.End(ctx, agent); err != nil {
			t.Fatal(err)
		}
		c.waitEvent("session ended", func(ev frame) bool { return ev.str("kind") == "session_ended" && ev.str("reason") == "agent" })
		mustErr(t, c.do("send_message", map[string]any{"text": "still there?"}), "session_ended")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"X": "1"}}), "session_ended")
		got = mustOK(t, c.do("get_userdata", map[string]any{"key": "SurveyURL"}))
		if got.str("user_data", "SurveyURL") != "https://survey.example/1" {
			t.Fatalf("SurveyURL after end: %v", got)
		}
		tr := mustOK(t, c.do("get_transcript", map[string]any{"from_index": 0}))
		if n := len(tr["events"].([]any)); n != len(evs)+2 {
			t.Fatalf("transcript after end has %d events, want %d", n, len(evs)+2)
		}
		mustOK(t, c.do("leave", nil)) // leaving an ended session is harmless
	})

	t.Run("OK_RetriedCommandAppliedOnce", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		first := mustOK(t, c.doID("retry-1", "send_message", map[string]any{"text": "once"}))
		second := mustOK(t, c.doID("retry-1", "send_message", map[string]any{"text": "once"}))
		if first.num("index") != second.num("index") {
			t.Fatalf("retry got index %d, first %d", second.num("index"), first.num("index"))
		}
		mustOK(t, c.doID("retry-ud", "update_userdata", map[string]any{"user_data": map[string]any{"K": "v"}}))
		mustOK(t, c.doID("retry-ud", "update_userdata", map[string]any{"user_data": map[string]any{"K": "v"}}))
		evs, _ := m.Chat.Transcript(ctx, data.str("session_id"), 0, 0)
		n := 0
		for _, ev := range evs {
			if ev.Kind == chat.EventMessage {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		hist, _ := m.Chat.UserDataHistory(ctx, data.str("session_id"))
		if len(hist) != 1 {
			t.Fatalf("%d UserData changes, want 1", len(hist))
		}

		// A retried start (same id, e.g. the answer was lost) finds the same session.
		c2 := dial(t, m, nil)
		a := mustOK(t, c2.doID("start-retry-0123456789abcdef0123456789", "start", map[string]any{"username": "Dan"}))
		c3 := dial(t, m, nil)
		b := mustOK(t, c3.doID("start-retry-0123456789abcdef0123456789", "start", map[string]any{"username": "Dan"}))
		if a.str("session_id") != b.str("session_id") || a.str("secure_key") == b.str("secure_key") {
			t.Fatalf("retried start: %v vs %v", a, b)
		}
		// Only the newest key restores.
		c4 := dial(t, m, nil)
		mustErr(t, c4.do("restore", map[string]any{"session_id": a.str("session_id"), "secure_key": a.str("secure_key")}), "session_not_found")
		mustOK(t, c4.do("restore", map[string]any{"session_id": b.str("session_id"), "secure_key": b.str("secure_key")}))
		// Security probe finding 10: once the session was used (here: restored), the start id is
		// worth nothing: sent again, it is refused and the customer's key stays valid.
		c5 := dial(t, m, nil)
		mustErr(t, c5.doID("start-retry-0123456789abcdef0123456789", "start", map[string]any{"username": "Dan"}), "invalid_argument")
		mustOK(t, c4.do("send_message", map[string]any{"text": "still mine"}))
	})

	// Security probe finding 10: a start id found the session again with a new key for ten
	// minutes, from any socket, even after the customer had used it; whoever learnt the id could
	// take the session over and lock the customer out.
	t.Run("ErrStartIDAfterUse", func(t *testing.T) {
		id := newID()
		c := dial(t, m, nil)
		data := mustOK(t, c.doID(id, "start", map[string]any{"username": "Eve's target"}))
		mustOK(t, c.do("send_message", map[string]any{"text": "my card number is…"}))
		thief := dial(t, m, nil)
		mustErr(t, thief.doID(id, "start", map[string]any{"username": "Eve"}), "invalid_argument")
		// The customer's own key still restores, and nothing of the session was handed out.
		r := dial(t, m, nil)
		mustOK(t, r.do("restore", map[string]any{"session_id": data.str("session_id"), "secure_key": data.str("secure_key")}))
		if f := thief.snapshot(); len(f) != 0 {
			t.Fatalf("the refused socket got frames: %v", f)
		}
		// Ids too short to carry 128 random bits are refused.
		mustErr(t, dial(t, m, nil).doID("c-0123456789abcdef0123456789abc", "start", nil), "invalid_argument")
	})

	t.Run("OK_RestoreReplaysFromIndex", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		mustOK(t, c.do("send_message", map[string]any{"text": "one"}))
		mustOK(t, c.do("send_message", map[string]any{"text": "two"}))
		c.waitEvent("own message", func(ev frame) bool { return ev.num("index") == 3 })
		_ = c.ws.Close()

		r := dial(t, m, nil)
		res := mustOK(t, r.do("restore", map[string]any{"session_id": data.str("session_id"), "secure_key": data.str("secure_key"), "from_index": 3}))
		if res.num("next_index") != 4 || res.str("secure_key") != "" {
			t.Fatalf("restore data: %v", res)
		}
		r.waitEvent("replayed message", func(ev frame) bool { return ev.num("index") == 3 && ev.str("content", "text") == "two" })
		for _, ev := range r.events() {
			if ev.num("index") < 3 {
				t.Fatalf("restore from 3 replayed %v", ev)
			}
		}
	})

	t.Run("ErrRestore", func(t *testing.T) {
		_, data := startSession(t, m, nil)
		c := dial(t, m, nil)
		mustErr(t, c.do("restore", map[string]any{"session_id": data.str("session_id"), "secure_key": "wrong"}), "session_not_found")
		mustErr(t, c.do("restore", map[string]any{"session_id": "00000000-0000-0000-0000-000000000000", "secure_key": "x"}), "session_not_found")
		mustErr(t, c.do("restore", map[string]any{"session_id": "not-a-uuid", "secure_key": "x"}), "session_not_found")
		mustErr(t, c.do("restore", map[string]any{"session_id": data.str("session_id")}), "invalid_argument")
		mustErr(t, c.do("restore", map[string]any{"session_id": 12}), "invalid_argument")

		ended, edata := startSession(t, m, nil)
		mustOK(t, ended.do("leave", nil))
		ended.waitEvent("ended", func(ev frame) bool { return ev.str("kind") == "session_ended" && ev.str("reason") == "leave_request" })
		in, _ := m.Chat.Interaction(context.Background(), edata.str("session_id"))
		if in.State != chat.StateAbandoned {
			t.Fatalf("customer left before any agent: state %s, want abandoned", in.State)
		}
		mustErr(t, c.do("restore", map[string]any{"session_id": edata.str("session_id"), "secure_key": edata.str("secure_key")}), "session_ended")
		// The connection survived all of that.
		mustOK(t, c.do("start", map[string]any{"username": "Eve"}))
	})
}
