package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/chat"
	"agentd/userdata"
)

// orderedSocket reads a customer socket's frames in the order the server wrote them (the test
// client files results apart from the other frames).
type orderedSocket struct {
	t  *testing.T
	ws *websocket.Conn
}

func (s orderedSocket) next() frame {
	s.t.Helper()
	_ = s.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := s.ws.ReadMessage()
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		s.t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

func (s orderedSocket) send(id, cmd string, args any) {
	s.t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "cmd": cmd, "args": args})
	if err := s.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		s.t.Fatal(err)
	}
}

// TestStartHandsItsEventsOver: a start is followed from before it commits and its events are
// handed to the socket in memory. The result still comes first, then the start's events from
// index 0 with no gap and no repeat; what others commit right after the start arrives in order;
// the customer's own UserData from the start is never shown, an agent's later change is; a
// retried start's socket is caught up on the session from the start; a refused start leaves
// the socket free to start again.
func TestStartHandsItsEventsOver(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	ws, _, err := dialRaw(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	s := orderedSocket{t, ws}

	s.send("c-refused-0123456789abcdef0123456789", "start", map[string]any{"username": "Ann", "service": "no-such-service"})
	if f := s.next(); f["type"] != "result" || f["ok"] != false || f.str("error", "code") != "service_not_found" {
		t.Fatalf("start in an unknown service: %v", f)
	}

	startID := "c-handover-0123456789abcdef01234567"
	s.send(startID, "start", map[string]any{"username": "Ann", "user_data": map[string]any{"plan": "gold"}})
	res := s.next()
	if res["type"] != "result" || res.str("id") != startID || res["ok"] != true {
		t.Fatalf("first frame after start: %v, want its result", res)
	}
	iid := res.str("data", "session_id")
	// Right after the start, others write to the chat: an integration's notice and an agent.
	if _, err := m.Chat.SendIntegrationNotice(ctx, iid, "integration:test", chat.AudienceAll, json.RawMessage(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	agent := agentJoin(t, m, iid)
	if _, err := m.Chat.Send(ctx, agent, "", "hello Ann", ""); err != nil {
		t.Fatal(err)
	}
	visible := true
	if _, err := m.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "note", Value: "vip", Visible: &visible}}); err != nil {
		t.Fatal(err)
	}

	nextIndex, sawNotice, sawChange, sawMessage := 0, false, false, false
	for !sawNotice || !sawChange || !sawMessage {
		f := s.next()
		switch f["type"] {
		case "event":
			if got := f.num("event", "index"); got != nextIndex {
				t.Fatalf("event index %d, want %d (no gap, no repeat): %v", got, nextIndex, f)
			}
			if nextIndex == 0 && f.str("event", "kind") != string(chat.EventPartyJoined) {
				t.Fatalf("first event: %v, want the customer's party_joined", f)
			}
			nextIndex++
			sawMessage = sawMessage || f.str("event", "content", "text") == "hello Ann"
		case "notice":
			sawNotice = true
		case "userdata":
			if _, own := f["changes"].(map[string]any)["plan"]; own {
				t.Fatalf("the customer was shown its own UserData: %v", f)
			}
			sawChange = true
		}
	}

	// A retried start (its answer lost) on another socket: the same session, caught up from 0.
	ws2, _, err := dialRaw(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws2.Close() })
	s2 := orderedSocket{t, ws2}
	s2.send(startID, "start", map[string]any{"username": "Ann"})
	if f := s2.next(); f["type"] != "result" || f.str("data", "session_id") != iid {
		t.Fatalf("retried start: %v, want the result for session %s", f, iid)
	}
	for i := range nextIndex {
		f := s2.next()
		for f["type"] != "event" {
			f = s2.next()
		}
		if f.num("event", "index") != i {
			t.Fatalf("retried start's socket: event %v, want index %d", f, i)
		}
	}
}

// TestTwoTabsGetTheSameFrame: an event that goes to two sockets of one customer (two tabs) is
// written to both byte for byte alike (encoded once and shared, web/customer/frames.go).
func TestTwoTabsGetTheSameFrame(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	open := func() (orderedSocket, *websocket.Conn) {
		ws, _, err := dialRaw(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return orderedSocket{t, ws}, ws
	}
	tab1, ws1 := open()
	tab1.send(newID(), "start", map[string]any{"username": "Ann"})
	res := tab1.next()
	if res["type"] != "result" || res["ok"] != true {
		t.Fatalf("start: %v", res)
	}
	iid := res.str("data", "session_id")
	tab2, ws2 := open()
	tab2.send(newID(), "restore", map[string]any{"session_id": iid, "secure_key": res.str("data", "secure_key"), "from_index": 1})
	if f := tab2.next(); f["type"] != "result" || f["ok"] != true {
		t.Fatalf("restore: %v", f)
	}
	agent := agentJoin(t, m, iid)
	if _, err := m.Chat.Send(context.Background(), agent, "", "to both tabs", ""); err != nil {
		t.Fatal(err)
	}
	message := func(ws *websocket.Conn) []byte {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("to both tabs")) {
				return b
			}
		}
	}
	if b1, b2 := message(ws1), message(ws2); !bytes.Equal(b1, b2) || !bytes.HasPrefix(b1, []byte(`{"type":"event"`)) {
		t.Fatalf("tab 1 got %s, tab 2 %s", b1, b2)
	}
}
