package customer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"go.uber.org/goleak"

	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/customer"
	"agentd/web/webtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeWait is the customer sockets' WriteWait here: a client that reads nothing is dropped
// within a fraction of a second instead of 10 s.
const writeWait = 200 * time.Millisecond

// serve runs the customer surface of st, reading chats through ch, and returns the socket's URL.
func serve(t *testing.T, st *webtest.Stack, ch customer.Chat) string {
	t.Helper()
	s := customer.New(customer.Deps{Config: customer.Config{WriteWait: writeWait}, Chat: ch, Sockets: st.Sockets,
		Positions: st.Positions, Metrics: st.Metrics, Logger: st.Logger})
	e := echo.New()
	s.Register(e)
	return st.Serve(t, e) + "/ws/chat"
}

var lastID atomic.Int64

// newID returns a command id, long enough for start (chat.MinStartIDLen).
// newID is unique in the test binary and long enough for a start id (32 characters).
func newID() string { return fmt.Sprintf("socket-test-%08d-%s", lastID.Add(1), "0123456789abcdef") }

// do runs a command and returns its result; a failed one fails the test. Frames before the result
// are skipped.
func do(t *testing.T, c *webtest.Client, cmd string, args any) webtest.Frame {
	t.Helper()
	id := newID()
	c.Send(map[string]any{"id": id, "cmd": cmd, "args": args})
	f := c.WaitFor("the result of "+cmd, func(f webtest.Frame) bool { return f["type"] == "result" && f["id"] == id })
	if f["ok"] != true {
		t.Fatalf("%s failed: %v", cmd, f)
	}
	return f
}

func isEvent(kind string, f webtest.Frame) bool {
	return f["type"] == "event" && f.Str("event", "kind") == kind
}

// chatWithAgent starts a session on a new socket and has a new agent accept it. It returns once
// the customer saw the agent join, so nothing is left to catch up on.
func chatWithAgent(t *testing.T, st *webtest.Stack, url string) (c *webtest.Client, session webtest.Frame, ann agent.User, annParty chat.Party) {
	t.Helper()
	ann = st.ReadyAgent(t, "ann")
	c = webtest.Dial(t, url, customer.Subprotocol)
	session = do(t, c, "start", map[string]any{"username": "Tina"})
	annParty = st.Accept(t, ann, session.Str("data", "session_id"))
	c.WaitFor("the agent joining", func(f webtest.Frame) bool {
		return isEvent("party_joined", f) && f.Str("event", "party", "id") == annParty.ID
	})
	return c, session, ann, annParty
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	st := webtest.New(t)
	url := serve(t, st, st.Chat)
	ctx := context.Background()
	slow, session, ann, _ := chatWithAgent(t, st, url)
	iid := session.Str("data", "session_id")
	// The same customer in another tab, which keeps reading.
	other := webtest.Dial(t, url, customer.Subprotocol)
	do(t, other, "restore", map[string]any{"session_id": iid, "secure_key": session.Str("data", "secure_key")})

	// slow reads nothing from now on while the agent writes long messages; other reads each.
	text := strings.Repeat("a long answer ", 280)
	sent := 0
	deadline := time.Now().Add(5 * time.Second)
	for st.Logged(`msg="dropping slow connection"`, "surface=customer") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a customer socket that reads nothing was not dropped after %d messages", sent)
		}
		ev, err := st.Agents.Send(ctx, ann, iid, newID(), text)
		if err != nil {
			t.Fatal(err)
		}
		sent++
		other.WaitFor("the agent's message", func(f webtest.Frame) bool {
			return isEvent("message", f) && f.Str("event", "index") == strconv.Itoa(ev.Index)
		})
	}
	t.Logf("dropped after %d messages", sent)

	if ce := slow.Closed(); ce != nil && (ce.Code != web.CloseTooSlow.Code || ce.Text != web.CloseTooSlow.Text) {
		t.Fatalf("the slow socket was closed with %v, want %v (or no close frame: its socket was full)", ce, web.CloseTooSlow)
	}
	do(t, other, "send_message", map[string]any{"text": "Thanks, all received"})
	webtest.WaitUntil(t, "only the one still reading is registered", func() bool { return st.Hub.Count() == 1 })
}

func TestFailedRefresh(t *testing.T) {
	t.Parallel()

	t.Run("OK_UserDataChangeArrivesAfterFailedRead", func(t *testing.T) {
		t.Parallel()
		st := webtest.New(t)
		fc := webtest.NewFaultyChat(st.Chat)
		c, session, ann, _ := chatWithAgent(t, st, serve(t, st, fc))

		fc.FailSideItems()
		visible := true
		if err := st.Agents.ChangeUserData(context.Background(), ann, session.Str("data", "session_id"), newID(),
			[]userdata.Change{{Key: "OrderId", Value: "A-1017", Visible: &visible}}); err != nil {
			t.Fatal(err)
		}
		// Nothing else happens in this chat: only the retry can deliver it.
		c.WaitFor("the UserData change", func(f webtest.Frame) bool {
			return f["type"] == "userdata" && f.Str("changes", "OrderId") == "A-1017"
		})
		if n := fc.Injected(); n != 1 {
			t.Fatalf("%d faults injected, want 1", n)
		}
	})

	t.Run("OK_ResyncDeliversMessageWhoseNotificationWasLost", func(t *testing.T) {
		t.Parallel()
		st := webtest.New(t)
		fc := webtest.NewFaultyChat(st.Chat)
		c, _, _, annParty := chatWithAgent(t, st, serve(t, st, fc))

		// Another node commits the agent's message while this node's LISTEN connection is
		// down; when it comes back the sockets resync, and the first read of that fails.
		if _, err := st.OtherNode.Send(context.Background(), annParty, newID(), "Your parcel left today", chat.ContentText); err != nil {
			t.Fatal(err)
		}
		fc.FailTranscript()
		st.Resync()
		c.WaitFor("the message committed elsewhere", func(f webtest.Frame) bool {
			return isEvent("message", f) && f.Str("event", "content", "text") == "Your parcel left today"
		})
		if n := fc.Injected(); n != 1 {
			t.Fatalf("%d faults injected, want 1", n)
		}
	})
}

func TestShutdown(t *testing.T) {
	// Not parallel: goleak must see only this test's goroutines.
	st := webtest.New(t)
	fc := webtest.NewFaultyChat(st.Chat)
	url := serve(t, st, fc)
	ignore := goleak.IgnoreCurrent() // the stack and its server, not the sockets

	c := webtest.Dial(t, url, customer.Subprotocol)
	do(t, c, "start", map[string]any{"username": "Tina"})
	c.WaitFor("the welcome notice", func(f webtest.Frame) bool { return isEvent("notice", f) })
	idle := webtest.Dial(t, url, customer.Subprotocol)
	do(t, idle, "start", map[string]any{"username": "Tom"})
	// A refresh is reading (stuck for a second) when the node shuts down.
	stalled := fc.StallTranscript(time.Second)
	st.Resync()
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh after the resync")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Sockets.Shutdown(ctx)
	goleak.VerifyNone(t, ignore)
	for _, c := range []*webtest.Client{c, idle} {
		if ce := c.Closed(); ce == nil || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("the socket was closed with %v, want 1001", ce)
		}
	}
}
