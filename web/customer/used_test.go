package customer_test

import (
	"context"
	"sync/atomic"
	"testing"

	"agentd/chat"
	"agentd/web/customer"
	"agentd/web/webtest"
)

// usedChat counts the separate SessionUsed transactions.
type usedChat struct {
	*chat.Service
	calls atomic.Int64
}

func (u *usedChat) SessionUsed(ctx context.Context, interactionID string) error {
	u.calls.Add(1)
	return u.Service.SessionUsed(ctx, interactionID)
}

// result sends a command with the given id and returns its result frame, ok or not.
func result(c *webtest.Client, id, cmd string, args any) webtest.Frame {
	c.Send(map[string]any{"id": id, "cmd": cmd, "args": args})
	return c.WaitFor("the result of "+cmd, func(f webtest.Frame) bool { return f["type"] == "result" && f["id"] == id })
}

// The first command after start closes the start retry (docs/protocol.md): a start sent again
// with the same id is refused. A message, UserData change or notice does it in its own group
// commit, without a transaction of its own; any other command, and a batched one that failed,
// by a separate SessionUsed as before.
func TestSessionUsedFolded(t *testing.T) {
	t.Parallel()
	st := webtest.New(t)
	uc := &usedChat{Service: st.Chat}
	url := serve(t, st, uc)

	first := func(name string, want int64, cmd string, args any, ok bool) {
		t.Helper()
		startID := newID()
		c := webtest.Dial(t, url, customer.Subprotocol)
		if f := result(c, startID, "start", map[string]any{"username": "Tina"}); f["ok"] != true {
			t.Fatalf("%s: start: %v", name, f)
		}
		before := uc.calls.Load()
		f := result(c, newID(), cmd, args)
		if (f["ok"] == true) != ok {
			t.Fatalf("%s: %s answered %v, want ok=%v", name, cmd, f, ok)
		}
		if n := uc.calls.Load() - before; n != want {
			t.Fatalf("%s: %d separate SessionUsed calls, want %d", name, n, want)
		}
		// Answered, the start id is worth nothing, from any socket.
		thief := webtest.Dial(t, url, customer.Subprotocol)
		if f := result(thief, startID, "start", map[string]any{"username": "Eve"}); f["ok"] == true || f.Str("error", "code") != "invalid_argument" {
			t.Fatalf("%s: a start sent again after %s: %v, want invalid_argument", name, cmd, f)
		}
		// Used once, the session costs no more SessionUsed calls.
		before = uc.calls.Load()
		do(t, c, "typing", map[string]any{"is_typing": true})
		do(t, c, "send_message", map[string]any{"text": "again"})
		if n := uc.calls.Load() - before; n != 0 {
			t.Fatalf("%s: %d SessionUsed calls after the first command, want 0", name, n)
		}
	}
	first("message", 0, "send_message", map[string]any{"text": "Hello"}, true)
	first("UserData", 0, "update_userdata", map[string]any{"user_data": map[string]any{"Order": "A-1"}}, true)
	first("UserData delete", 0, "delete_userdata", map[string]any{"key": "Nothing"}, true)
	first("notice", 0, "send_notice", map[string]any{"payload": map[string]any{"cobrowse": "offer"}}, true)
	first("failed message", 1, "send_message", map[string]any{"text": ""}, false)
	first("typing", 1, "typing", map[string]any{"is_typing": true}, true)
	first("transcript", 1, "get_transcript", nil, true)
}
