package console

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
	"agentd/web"
	"agentd/web/webtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	// writeWait is the console sockets' WriteWait here: a console that reads nothing is
	// dropped within a fraction of a second instead of 10 s.
	writeWait = 200 * time.Millisecond
	testCSRF  = "csrf-token-of-the-test-session"
)

// serve runs the console surface of st, reading chats through ch, and returns the socket's URL.
// Its route stands in for web.Auth.Require: it signs in the agent ?agent=<id> names, with
// testCSRF as the session's CSRF token.
func serve(t *testing.T, st *webtest.Stack, ch Chat) string {
	t.Helper()
	s := New(Deps{Desk: st.Agents, Accounts: st.Accounts, History: st.History, Chat: ch, Sockets: st.Sockets,
		Metrics: st.Metrics, Logger: st.Logger, WriteWait: writeWait})
	e := echo.New()
	e.GET("/ws/console", func(c echo.Context) error {
		id, _ := strconv.ParseInt(c.QueryParam("agent"), 10, 64)
		u, err := st.Accounts.User(c.Request().Context(), id)
		if err != nil {
			return err
		}
		// A real browser session: an open console checks that its session lives.
		token, _, err := st.Accounts.StartWebSession(c.Request().Context(), u)
		if err != nil {
			return err
		}
		c.Set("user", u)
		c.Set("csrf", testCSRF)
		c.Set("session_token", token)
		return s.handleSocket(c)
	})
	return st.Serve(t, e) + "/ws/console"
}

var lastID atomic.Int64

// newID returns a command id, long enough for start (chat.MinStartIDLen).
// newID is unique in the test binary and long enough for a start id (32 characters).
func newID() string { return fmt.Sprintf("console-test-%08d-%s", lastID.Add(1), "0123456789abcdef") }

// hasOp reports whether f is an ops frame with an op on element id whose HTML contains text.
func hasOp(f webtest.Frame, op, id, text string) bool {
	if f["type"] != "ops" {
		return false
	}
	ops, _ := f["ops"].([]any)
	for _, o := range ops {
		m, _ := o.(map[string]any)
		if m["op"] == op && m["id"] == id && strings.Contains(fmt.Sprint(m["html"]), text) {
			return true
		}
	}
	return false
}

// activeChat starts a customer session and has a new agent accept it.
func activeChat(t *testing.T, st *webtest.Stack) (agent.User, chat.Session) {
	t.Helper()
	ann := st.ReadyAgent(t, "ann")
	sess, err := st.Chat.Start(context.Background(), chat.StartParams{CommandID: newID(), Username: "Tina"})
	if err != nil {
		t.Fatal(err)
	}
	st.Accept(t, ann, sess.Interaction.ID)
	return ann, sess
}

// openConsole opens u's console, says hello and waits for the first render to show the
// transcript of interactionID.
func openConsole(t *testing.T, url string, u agent.User, interactionID string) *webtest.Client {
	t.Helper()
	c := webtest.Dial(t, fmt.Sprintf("%s?agent=%d", url, u.ID))
	c.Send(map[string]any{"id": "h1", "cmd": "hello", "args": map[string]string{"csrf": testCSRF}})
	if r := c.WaitFor("the hello's result", func(f webtest.Frame) bool { return f["type"] == "result" && f["id"] == "h1" }); r["ok"] != true {
		t.Fatalf("hello refused: %v", r)
	}
	c.WaitFor("the chat's transcript", func(f webtest.Frame) bool {
		return hasOp(f, "append", "transcript-"+interactionID, "Agent "+u.Username+" joined")
	})
	return c
}

// customerSays sends text as the customer of sess.
func customerSays(t *testing.T, st *webtest.Stack, sess chat.Session, text string) {
	t.Helper()
	if _, err := st.Chat.Send(context.Background(), sess.Party, newID(), text, chat.ContentText); err != nil {
		t.Fatal(err)
	}
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	st := webtest.New(t)
	url := serve(t, st, st.Chat)
	ann, sess := activeChat(t, st)
	iid := sess.Interaction.ID
	slow := openConsole(t, url, ann, iid)
	other := openConsole(t, url, ann, iid) // the agent's second tab, which keeps reading

	// slow reads nothing from now on while the customer writes long messages; other reads each.
	long := strings.Repeat(" and then some more", 200)
	sent := 0
	deadline := time.Now().Add(5 * time.Second)
	for st.Logged(`msg="dropping slow connection"`, "surface=console") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a console that reads nothing was not dropped after %d messages", sent)
		}
		sent++
		marker := fmt.Sprintf("message %d:", sent)
		customerSays(t, st, sess, marker+long)
		other.WaitFor(marker, func(f webtest.Frame) bool { return hasOp(f, "append", "transcript-"+iid, marker) })
	}
	t.Logf("dropped after %d messages", sent)

	if ce := slow.Closed(); ce != nil && (ce.Code != web.CloseTooSlow.Code || ce.Text != web.CloseTooSlow.Text) {
		t.Fatalf("the slow console was closed with %v, want %v (or no close frame: its socket was full)", ce, web.CloseTooSlow)
	}
	other.Send(map[string]any{"id": "s1", "cmd": "send", "args": map[string]string{"iid": iid, "text": "All received"}})
	if r := other.WaitFor("the send's result", func(f webtest.Frame) bool { return f["type"] == "result" && f["id"] == "s1" }); r["ok"] != true {
		t.Fatalf("send from the other console: %v", r)
	}
	webtest.WaitUntil(t, "only the console still reading is registered", func() bool { return st.Hub.Count() == 1 })
}

func TestFailedRefresh(t *testing.T) {
	t.Parallel()

	t.Run("OK_CustomerMessageShownByTheRetry", func(t *testing.T) {
		// Before the connection core, a console whose refresh failed cleared every chat's
		// marks and re-marked only presence and queues: this message stayed invisible until the
		// chat's next event.
		t.Parallel()
		st := webtest.New(t)
		fc := webtest.NewFaultyChat(st.Chat)
		ann, sess := activeChat(t, st)
		iid := sess.Interaction.ID
		c := openConsole(t, serve(t, st, fc), ann, iid)

		fc.FailTranscript()
		customerSays(t, st, sess, "Where is my parcel?")
		// Nothing else happens in this chat: only the retry can show it.
		c.WaitFor("the customer's message", func(f webtest.Frame) bool {
			return hasOp(f, "append", "transcript-"+iid, "Where is my parcel?")
		})
		if n := fc.Injected(); n != 1 {
			t.Fatalf("%d faults injected, want 1", n)
		}
	})

	t.Run("OK_EndedChatDrawnByTheRetry", func(t *testing.T) {
		// A refresh that read the chat's end, then failed before drawing the read-only panel and
		// the chat list: the retry reads no new event, and must still draw both.
		t.Parallel()
		st := webtest.New(t)
		fc := webtest.NewFaultyChat(st.Chat)
		ann, sess := activeChat(t, st)
		iid := sess.Interaction.ID
		c := openConsole(t, serve(t, st, fc), ann, iid)

		fc.FailInteraction()
		if _, err := st.Chat.Leave(context.Background(), sess.Party, newID()); err != nil {
			t.Fatal(err)
		}
		wrapUp, list := false, false
		c.WaitFor("the ended chat's wrap-up and the chat list redrawn", func(f webtest.Frame) bool {
			wrapUp = wrapUp || hasOp(f, "html", "actions-"+iid, "Done")
			list = list || hasOp(f, "replace", "chats", iid)
			return wrapUp && list
		})
		if n := fc.Injected(); n != 1 {
			t.Fatalf("%d faults injected, want 1", n)
		}
	})

	t.Run("OK_ResyncShowsMessageWhoseNotificationWasLost", func(t *testing.T) {
		t.Parallel()
		st := webtest.New(t)
		fc := webtest.NewFaultyChat(st.Chat)
		ann, sess := activeChat(t, st)
		iid := sess.Interaction.ID
		c := openConsole(t, serve(t, st, fc), ann, iid)

		// Another node commits the customer's message while this node's LISTEN connection is
		// down; when it comes back the sockets resync, and the first transcript read fails.
		if _, err := st.OtherNode.Send(context.Background(), sess.Party, newID(), "Hello from elsewhere", chat.ContentText); err != nil {
			t.Fatal(err)
		}
		fc.FailTranscript()
		st.Resync()
		c.WaitFor("the message committed elsewhere", func(f webtest.Frame) bool {
			return hasOp(f, "append", "transcript-"+iid, "Hello from elsewhere")
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
	ann, sess := activeChat(t, st)
	ignore := goleak.IgnoreCurrent() // the stack and its server, not the sockets

	c := openConsole(t, url, ann, sess.Interaction.ID)
	// A refresh is reading (stuck for a second) when the node shuts down.
	stalled := fc.StallTranscript(time.Second)
	customerSays(t, st, sess, "Are you there?")
	select {
	case <-stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh after the customer's message")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Sockets.Shutdown(ctx)
	goleak.VerifyNone(t, ignore)
	if ce := c.Closed(); ce == nil || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("the console was closed with %v, want 1001", ce)
	}
}
