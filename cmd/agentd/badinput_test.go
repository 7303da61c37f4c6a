package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/chat"
	"agentd/userdata"
)

// TestBadInput sends every kind of bad input the protocol documents and checks the error code,
// that nothing was half-written, and that the connection and the server survive.
func TestBadInput(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()

	// alive checks the connection still answers commands.
	alive := func(t *testing.T, c *client) {
		t.Helper()
		f := c.do("get_userdata", map[string]any{"key": "FirstName"})
		if f["ok"] != true && f.str("error", "code") != "not_started" {
			t.Fatalf("connection no longer works: %v", f)
		}
	}

	t.Run("ErrMalformedJSON", func(t *testing.T) {
		c := dial(t, m, nil)
		c.sendRaw([]byte(`{"id": "x", "cmd": `))
		c.waitFrame("bad_frame", func(f frame) bool { return f["type"] == "error" && f.str("error", "code") == "bad_frame" })
		c.sendRaw([]byte(`[1,2,3]`))
		c.sendRaw([]byte(`{"cmd":"start"}`))
		c.sendRaw([]byte(`{"id":"` + strings.Repeat("x", 65) + `","cmd":"start"}`))
		c.wait("three more bad_frame errors", func() bool {
			n := 0
			for _, f := range c.frames {
				if f.str("error", "code") == "bad_frame" {
					n++
				}
			}
			return n == 4
		})
		alive(t, c)
	})

	t.Run("ErrUnknownCommand", func(t *testing.T) {
		c := dial(t, m, nil)
		mustErr(t, c.do("launch_rockets", nil), "unknown_command")
		alive(t, c)
	})

	t.Run("ErrNotStarted", func(t *testing.T) {
		c := dial(t, m, nil)
		for _, cmd := range []string{"send_message", "typing", "leave", "get_transcript", "update_userdata", "get_userdata", "delete_userdata", "send_notice"} {
			mustErr(t, c.do(cmd, map[string]any{}), "not_started")
		}
	})

	t.Run("ErrAlreadyStarted", func(t *testing.T) {
		c, _ := startSession(t, m, nil)
		mustErr(t, c.do("start", nil), "already_started")
		mustErr(t, c.do("restore", map[string]any{"session_id": "x", "secure_key": "y"}), "already_started")
	})

	t.Run("ErrStartArguments", func(t *testing.T) {
		count := func() (n int) {
			t.Helper()
			if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM interactions`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		c := dial(t, m, nil)
		mustErr(t, c.do("start", map[string]any{"service": "nope"}), "service_not_found")
		mustErr(t, c.do("start", map[string]any{"username": 42}), "invalid_argument")
		mustErr(t, c.do("start", map[string]any{"username": "a\x00b"}), "invalid_argument")
		mustErr(t, c.doID("short", "start", nil), "invalid_argument")
		mustErr(t, c.do("start", map[string]any{"user_data": map[string]any{"Nested": map[string]any{"a": 1}}}), "userdata_invalid_value")
		if after := count(); after != before {
			t.Fatalf("failed starts left %d interactions behind", after-before)
		}
		mustOK(t, c.do("start", nil))
	})

	t.Run("ErrFrameTooLarge", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		big := strings.Repeat("a", m.Config.Customer.MaxFrameBytes)
		mustErr(t, c.doID("big-1", "send_message", map[string]any{"text": big}), "frame_too_large")
		alive(t, c)
		evs, _ := m.Chat.Transcript(ctx, data.str("session_id"), 0, 0)
		for _, ev := range evs {
			if ev.Kind == chat.EventMessage {
				t.Fatalf("oversized message was stored")
			}
		}
		// At the hard limit the server closes with 1009, and keeps serving others.
		huge := make([]byte, 1<<20+10)
		for i := range huge {
			huge[i] = 'a'
		}
		_ = c.ws.WriteMessage(websocket.TextMessage, huge)
		<-c.closed
		if c.close == nil || c.close.Code != websocket.CloseMessageTooBig {
			t.Fatalf("close after huge frame: %v", c.close)
		}
		alive(t, dial(t, m, nil))
	})

	t.Run("ErrInvalidUTF8", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		c.sendRaw([]byte("{\"id\":\"u1\",\"cmd\":\"send_message\",\"args\":{\"text\":\"bad \xff\xfe\"}}"))
		mustErr(t, c.waitResult("u1"), "invalid_utf8")
		c.sendRaw([]byte(`{"id":"u2","cmd":"send_message","args":{"text":"lone \ud800 surrogate"}}`))
		mustErr(t, c.waitResult("u2"), "invalid_utf8")
		c.sendRaw([]byte(`{"id":"u3","cmd":"update_userdata","args":{"user_data":{"K":"\udc00"}}}`))
		mustErr(t, c.waitResult("u3"), "invalid_utf8")
		// A correct pair and an escaped backslash are fine.
		c.sendRaw([]byte(`{"id":"u4","cmd":"send_message","args":{"text":"smile \ud83d\ude00 and \\ud800"}}`))
		mustOK(t, c.waitResult("u4"))
		evs, _ := m.Chat.Transcript(ctx, data.str("session_id"), 0, 0)
		if last := evs[len(evs)-1]; last.Text != "smile 😀 and \\ud800" {
			t.Fatalf("stored %q", last.Text)
		}
	})

	t.Run("ErrNULBytes", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		mustErr(t, c.do("send_message", map[string]any{"text": "a\x00b"}), "invalid_text")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"K": "a\x00b"}}), "userdata_invalid_value")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"K\x00": "v"}}), "userdata_invalid_key")
		mustErr(t, c.do("send_notice", map[string]any{"payload": map[string]any{"x": "a\x00"}}), "invalid_text")
		mustErr(t, c.do("send_notice", map[string]any{"payload": map[string]any{"k\x00": 1}}), "invalid_text")
		mustErr(t, c.do("send_notice", map[string]any{"payload": []any{1, map[string]any{"deep": "\x00"}}}), "invalid_text")
		// A backslash followed by "u0000" is text, not a NUL: accepted.
		mustOK(t, c.do("send_notice", map[string]any{"payload": map[string]any{"path": `C:\u0000dir`}}))
		mustErr(t, c.do("typing", map[string]any{"is_typing": true, "text": "a\x00"}), "invalid_text")
		ud, _ := m.Chat.UserData(ctx, data.str("session_id"))
		if len(ud) != 0 {
			t.Fatalf("UserData written: %v", ud)
		}
	})

	t.Run("ErrMessageArguments", func(t *testing.T) {
		c, _ := startSession(t, m, nil)
		mustErr(t, c.do("send_message", map[string]any{"text": "   "}), "invalid_text")
		mustErr(t, c.do("send_message", map[string]any{"text": strings.Repeat("é", 4097)}), "invalid_text")
		mustErr(t, c.do("send_message", map[string]any{"text": "x", "type": "html"}), "invalid_argument")
		mustErr(t, c.do("send_message", map[string]any{"text": "javascript:alert(1)", "type": "url"}), "invalid_argument")
		mustErr(t, c.do("typing", map[string]any{}), "invalid_argument")
		mustErr(t, c.do("get_transcript", map[string]any{"from_index": -1}), "invalid_argument")
		mustErr(t, c.do("send_notice", map[string]any{}), "invalid_argument")
		mustErr(t, c.do("send_notice", map[string]any{"payload": strings.Repeat("n", 9000)}), "notice_too_large")
	})

	// Security probe finding 11: an index past the end, or beyond what an integer column holds,
	// is invalid_argument, never internal; a restore from there is refused instead of leaving a
	// socket that waits forever for events that cannot come.
	t.Run("ErrPositionsPastTheEnd", func(t *testing.T) {
		c, data := startSession(t, m, nil)
		d := mustOK(t, c.do("get_transcript", nil))
		next := d.num("next_index")
		if d := mustOK(t, c.do("get_transcript", map[string]any{"from_index": next})); d.str("events") != "[]" || d.num("next_index") != next {
			t.Fatalf("get_transcript at the end: %v", d)
		}
		for _, from := range []any{next + 1, 1 << 31, int64(1) << 40, 1e19} {
			mustErr(t, c.do("get_transcript", map[string]any{"from_index": from}), "invalid_argument")
		}
		r := dial(t, m, nil)
		for _, args := range []map[string]any{
			{"from_index": 1 << 31}, {"from_index": next + 1}, {"from_seq": int64(1) << 40}, {"from_seq": -1},
		} {
			args["session_id"], args["secure_key"] = data.str("session_id"), data.str("secure_key")
			mustErr(t, r.do("restore", args), "invalid_argument")
		}
		// The same socket can still restore properly, and the session works.
		mustOK(t, r.do("restore", map[string]any{"session_id": data.str("session_id"), "secure_key": data.str("secure_key"), "from_index": next}))
		mustOK(t, r.do("send_message", map[string]any{"text": "still here"}))
	})

	t.Run("ErrUserDataRules", func(t *testing.T) {
		c, data := startSession(t, m, map[string]any{"user_data": map[string]any{"Mine": "1"}})
		id := data.str("session_id")
		agent := agentJoin(t, m, id)
		visible := true
		if _, err := m.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{
			{Key: "AgentVisible", Value: "a", Visible: &visible}, {Key: "AgentHidden", Value: "h"},
		}); err != nil {
			t.Fatal(err)
		}
		// Same code for a key the customer sees and one it does not.
		for _, key := range []string{"AgentVisible", "AgentHidden", "_agentd.route"} {
			mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{key: "mine now"}}), "userdata_forbidden")
		}
		for _, key := range []string{"AgentVisible", "AgentHidden"} {
			mustErr(t, c.do("delete_userdata", map[string]any{"key": key}), "userdata_forbidden")
		}
		// A request with one forbidden key changes nothing at all.
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Fine": "ok", "AgentHidden": "x"}}), "userdata_forbidden")
		if v, ok, _ := m.Chat.CustomerUserData(ctx, id, "Fine"); ok {
			t.Fatalf("half-applied update wrote Fine=%s", v)
		}
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{strings.Repeat("k", 129): "v"}}), "userdata_invalid_key")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"": "v"}}), "userdata_invalid_key")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Long": strings.Repeat("v", 4095)}}), "userdata_invalid_value")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Null": nil}}), "userdata_invalid_value")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"List": []int{1}}}), "userdata_invalid_value")
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{}}), "invalid_argument")
		many := map[string]any{}
		for i := range 100 {
			many["k"+strings.Repeat("x", i%5)+string(rune('A'+i%26))+string(rune('a'+i/26))] = "v"
		}
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": many}), "userdata_too_many_keys")
		// Own keys can be changed and deleted.
		mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Mine": "2"}}))
		mustOK(t, c.do("delete_userdata", map[string]any{"key": "Mine"}))
		mustOK(t, c.do("delete_userdata", map[string]any{"key": "NeverExisted"}))
		hist, _ := m.Chat.UserDataHistory(ctx, id)
		var ops []string
		for _, h := range hist {
			ops = append(ops, string(h.Op)+":"+h.Key+":"+string(h.Owner))
		}
		want := "set:Mine:client set:AgentVisible:agent set:AgentHidden:agent set:Mine:client delete:Mine:client"
		if strings.Join(ops, " ") != want {
			t.Fatalf("history\n got %s\nwant %s", strings.Join(ops, " "), want)
		}
	})

	t.Run("ErrTooLargeTotal", func(t *testing.T) {
		c, _ := startSession(t, m, nil)
		for i := range 16 {
			mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"Blob" + string(rune('A'+i)): strings.Repeat("v", 4000)}}))
		}
		mustErr(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"BlobZ": strings.Repeat("v", 4000)}}), "userdata_too_large")
	})

	// Frames over the connection's limit (20 a second, bursts of 40) are dropped unanswered, with
	// one rate_limited error frame; the connection stays open, and works again a moment later.
	t.Run("ErrRateLimited", func(t *testing.T) {
		c, _ := startSession(t, m, nil)
		for range 80 {
			b, _ := json.Marshal(map[string]any{"id": newID(), "cmd": "get_userdata", "args": map[string]any{"key": "K"}})
			c.sendRaw(b)
		}
		c.waitFrame("the rate_limited error frame", func(f frame) bool { return f["type"] == "error" && f.str("error", "code") == "rate_limited" })
		time.Sleep(100 * time.Millisecond) // what was read is answered by then
		mustOK(t, c.do("get_userdata", map[string]any{"key": "K"}))
		c.mu.Lock()
		answered := len(c.result) - 2 // start and the last one
		c.mu.Unlock()
		if answered >= 80 || answered < 30 {
			t.Fatalf("%d of 80 commands sent at once were answered, want about 40 (the burst)", answered)
		}
		notices := 0
		for _, f := range c.snapshot() {
			if f.str("error", "code") == "rate_limited" {
				notices++
			}
		}
		if notices != 1 {
			t.Fatalf("%d rate_limited error frames, want one for the whole burst", notices)
		}
	})
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	db := newDB(t)

	t.Run("ErrForeignOriginWithAllowList", func(t *testing.T) {
		m := startNode(t, db, func(c *Config) { c.allowedOrigins = "https://shop.example.com, http://localhost:3000" })
		c := dial(t, m, http.Header{"Origin": {"https://evil.example.net"}})
		c.waitFrame("origin error", func(f frame) bool { return f.str("error", "code") == "origin_not_allowed" })
		<-c.closed
		if c.close == nil || c.close.Code != websocket.ClosePolicyViolation {
			t.Fatalf("close: %v", c.close)
		}
		ok := dial(t, m, http.Header{"Origin": {"https://shop.example.com"}})
		mustOK(t, ok.do("start", nil))
	})

	t.Run("ErrForeignOriginSameOriginDefault", func(t *testing.T) {
		m := startNode(t, db)
		c := dial(t, m, http.Header{"Origin": {"https://evil.example.net"}})
		c.waitFrame("origin error", func(f frame) bool { return f.str("error", "code") == "origin_not_allowed" })
		same := dial(t, m, http.Header{"Origin": {m.URL()}})
		mustOK(t, same.do("start", nil))
	})

	// Security probe finding 13: agentd's own pages (the demo) may always connect, also when an
	// allow-list is set, and an origin is its scheme, host and port.
	t.Run("OK_OwnOriginWithAllowList", func(t *testing.T) {
		m := startNode(t, db, func(c *Config) { c.allowedOrigins = "https://shop.example.com" })
		own := dial(t, m, http.Header{"Origin": {m.URL()}})
		mustOK(t, own.do("start", nil))
	})

	t.Run("ErrSameHostOtherScheme", func(t *testing.T) {
		m := startNode(t, db)
		c := dial(t, m, http.Header{"Origin": {strings.Replace(m.URL(), "http://", "https://", 1)}})
		c.waitFrame("origin error", func(f frame) bool { return f.str("error", "code") == "origin_not_allowed" })
		<-c.closed
		if c.close == nil || c.close.Code != websocket.ClosePolicyViolation {
			t.Fatalf("close: %v", c.close)
		}
	})

	t.Run("ErrBadOriginConfig", func(t *testing.T) {
		cfg := Config{Addr: "127.0.0.1:0", DatabaseURL: db, LogFormat: "text", allowedOrigins: "shop.example.com"}
		if err := cfg.load(); err == nil || !strings.Contains(err.Error(), "AGENTD_ALLOWED_ORIGINS") {
			t.Fatalf("bad origin list accepted: %v", err)
		}
	})

	t.Run("ErrWrongSubprotocol", func(t *testing.T) {
		m := startNode(t, db)
		d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v0"}}
		_, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/chat", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("dial with unknown version: %v %v", err, resp)
		}
	})
}
