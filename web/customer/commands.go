package customer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"agentd"
	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
)

// commandTimeout bounds one command, database work included.
const commandTimeout = 15 * time.Second

type commandFunc func(ctx context.Context, c *conn, id string, args json.RawMessage) (any, error)

var commands = map[string]commandFunc{
	"start":           cmdStart,
	"restore":         cmdRestore,
	"send_message":    cmdSendMessage,
	"typing":          cmdTyping,
	"leave":           cmdLeave,
	"get_transcript":  cmdGetTranscript,
	"update_userdata": cmdUpdateUserData,
	"get_userdata":    cmdGetUserData,
	"delete_userdata": cmdDeleteUserData,
	"send_notice":     cmdSendNotice,
}

func errInvalid(format string, args ...any) error {
	return agentd.Errorf(agentd.EINVALID, "invalid_argument", format, args...)
}

// HandleFrame parses one frame and runs its command (the read pump calls it, for the frames within
// the connection's frame limit: ConnOptions.FramesPerSecond counted this one already, whatever it
// holds). Whatever happens, the connection survives and the client learns why through a result
// (when the frame had a usable id) or an error frame.
func (c *conn) HandleFrame(ctx context.Context, typ int, frame []byte) {
	if typ != websocket.TextMessage {
		c.sendError("bad_frame", "Frames must be JSON text frames.")
		return
	}
	var in inFrame
	decodeErr := json.Unmarshal(frame, &in)
	id := ""
	if decodeErr == nil && in.ID != nil && web.ValidCommandID(*in.ID) {
		id = *in.ID
	}
	fail := func(code, description string) {
		if id != "" {
			c.Send(web.Failed(id, code, description))
			return
		}
		c.sendError(code, description)
	}
	switch {
	case len(frame) > c.s.cfg.MaxFrameBytes:
		fail("frame_too_large", fmt.Sprintf("Frames must be at most %d bytes.", c.s.cfg.MaxFrameBytes))
		return
	case !validUTF8Frame(frame):
		fail("invalid_utf8", "The frame is not valid UTF-8.")
		return
	case decodeErr != nil:
		c.sendError("bad_frame", "The frame is not a JSON object.")
		return
	case id == "":
		c.sendError("bad_frame", "Every command needs an \"id\": 1 to 64 printable ASCII characters.")
		return
	case in.Cmd == nil:
		fail("bad_frame", "Every command needs a \"cmd\".")
		return
	}
	run, ok := commands[*in.Cmd]
	if !ok {
		fail("unknown_command", fmt.Sprintf("Unknown command %q.", *in.Cmd))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	start := time.Now()
	var data any
	err := c.markUsed(ctx, *in.Cmd)
	if err == nil {
		data, err = run(ctx, c, id, in.Args)
		c.usedBy(ctx, *in.Cmd, err)
	}
	answered := errors.Is(err, errAnswered)
	code := "ok"
	if err != nil && !answered {
		code = agentd.ErrorCode(err)
	}
	c.s.metrics.Command("customer", *in.Cmd, code, time.Since(start)) // *in.Cmd is one of commands
	switch {
	case answered:
	case err != nil:
		web.LogCommandError(ctx, c.Logger(), *in.Cmd, err)
		fail(agentd.ErrorCode(err), agentd.ErrorMessage(err))
	default:
		c.Send(web.Result(id, data))
	}
}

// markUsed records, before the first command after start on this connection, that the customer
// uses its session: a start sent again with the same id is refused from then on. A restore
// records it itself, and so do the batched commands (foldsUse), in their own commit: usedBy.
func (c *conn) markUsed(ctx context.Context, cmd string) error {
	s := c.session()
	if c.used || s == nil || cmd == "start" || cmd == "restore" || foldsUse[cmd] {
		return nil
	}
	if err := c.s.chat.SessionUsed(ctx, s.interactionID); err != nil {
		return err
	}
	c.used = true
	return nil
}

// foldsUse are the commands whose commit records the session's use itself (the group-committed
// message path: postgres closes the start retry in the same transaction), so the first message
// after start costs no transaction of its own.
var foldsUse = map[string]bool{"send_message": true, "update_userdata": true, "delete_userdata": true, "send_notice": true}

// usedBy follows a command of foldsUse, before its answer: done, it used the session; failed
// (nothing of it committed), the session's use is recorded on its own, as before any other
// command, so that a start sent again is refused whatever the first command's outcome. When
// that fails too, the command's own error is the answer and the next command tries again.
func (c *conn) usedBy(ctx context.Context, cmd string, err error) {
	s := c.session()
	if c.used || s == nil || !foldsUse[cmd] {
		return
	}
	if err == nil {
		c.used = true
		return
	}
	if c.s.chat.SessionUsed(ctx, s.interactionID) == nil {
		c.used = true
	}
}

func (c *conn) sendError(code, description string) {
	c.Send(web.Error(code, description))
}

// decodeArgs decodes a command's args; a missing args is an empty object.
func decodeArgs(raw json.RawMessage, dst any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return errInvalid("Argument %q has the wrong type.", te.Field)
		}
		return errInvalid("args must be a JSON object.")
	}
	return nil
}

func (c *conn) requireSession() (*session, error) {
	s := c.session()
	if s == nil {
		return nil, agentd.Errorf(agentd.EINVALID, "not_started", "Start or restore a session first.")
	}
	return s, nil
}

type sessionData struct {
	SessionID string    `json:"session_id"`
	SecureKey string    `json:"secure_key,omitempty"`
	Party     partyJSON `json:"party"`
	State     string    `json:"state"`
	NextIndex int       `json:"next_index"`
	NextSeq   int64     `json:"next_seq"`
}

func cmdStart(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	var args struct {
		Service  string                     `json:"service"`
		Username string                     `json:"username"`
		Subject  string                     `json:"subject"`
		UserData map[string]json.RawMessage `json:"user_data"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if c.session() != nil {
		return nil, agentd.Errorf(agentd.ECONFLICT, "already_started", "This connection already has a session.")
	}
	if !c.s.startLimiter.Allow(c.ip) {
		return nil, agentd.Errorf(agentd.ERATELIMITED, "rate_limited", "Too many new sessions from this address; try again later.")
	}
	// The connection follows the new interaction before the start commits, held until the result
	// is queued: what anyone commits to it afterwards reaches it, the start's own events come in
	// memory, and nothing is read back (started).
	newID := chat.NewInteractionID()
	c.preattach(newID)
	sess, err := c.s.chat.Start(ctx, chat.StartParams{
		CommandID: id, ID: newID, Service: args.Service, Username: args.Username, Subject: args.Subject,
		Origin: c.origin, UserData: args.UserData,
	})
	if err != nil {
		c.unpreattach(newID)
		return nil, err
	}
	s := session{interactionID: sess.Interaction.ID, serviceID: sess.Interaction.ServiceID, party: sess.Party}
	// The result is queued before the events are released, so it reaches the client first.
	c.Send(web.Result(id, sessionData{
		SessionID: sess.Interaction.ID, SecureKey: sess.SecureKey, Party: partyOf(sess.Party), State: string(sess.Interaction.State),
	}))
	if sess.Interaction.ID != newID {
		// A retried start: its session is the one the first try created, caught up from the start.
		c.unpreattach(newID)
		c.attach(s, 0, 0)
		return nil, errAnswered
	}
	c.started(s, sess.Interaction, sess.Events)
	return nil, errAnswered
}

// errAnswered tells HandleFrame the command queued its own result.
var errAnswered = errors.New("answered")

func cmdRestore(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	var args struct {
		SessionID string `json:"session_id"`
		SecureKey string `json:"secure_key"`
		FromIndex int    `json:"from_index"`
		FromSeq   int64  `json:"from_seq"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if c.session() != nil {
		return nil, agentd.Errorf(agentd.ECONFLICT, "already_started", "This connection already has a session.")
	}
	sess, err := c.s.chat.Restore(ctx, args.SessionID, args.SecureKey)
	if err != nil {
		return nil, err
	}
	in := sess.Interaction
	// A position past the end would never be reached: the connection would wait for events
	// that cannot come (and re-read in vain every time something happens).
	if err := chat.CheckPositions(in, args.FromIndex, args.FromSeq); err != nil {
		return nil, err
	}
	c.Send(web.Result(id, sessionData{
		SessionID: in.ID, Party: partyOf(sess.Party), State: string(in.State), NextIndex: in.NextIndex, NextSeq: in.NextSeq,
	}))
	c.used = true // the restore closed the start retry
	c.attach(session{interactionID: in.ID, serviceID: in.ServiceID, party: sess.Party}, args.FromIndex, args.FromSeq)
	return nil, errAnswered
}

func cmdSendMessage(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		Text string `json:"text"`
		Type string `json:"type"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	ev, err := c.s.chat.Send(ctx, s.party, id, args.Text, args.Type)
	if err != nil {
		return nil, err
	}
	return map[string]any{"index": ev.Index, "timestamp": millis(ev.At)}, nil
}

func cmdTyping(ctx context.Context, c *conn, _ string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		IsTyping *bool  `json:"is_typing"`
		Text     string `json:"text"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if args.IsTyping == nil {
		return nil, errInvalid("is_typing is required.")
	}
	at, err := c.s.chat.SendTyping(ctx, s.party, *args.IsTyping, args.Text)
	if err != nil {
		return nil, err
	}
	return map[string]any{"timestamp": millis(at)}, nil
}

func cmdLeave(ctx context.Context, c *conn, id string, _ json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	at, err := c.s.chat.Leave(ctx, s.party, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"timestamp": millis(at)}, nil
}

func cmdGetTranscript(ctx context.Context, c *conn, _ string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		FromIndex int `json:"from_index"`
		Limit     int `json:"limit"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if args.Limit < 0 {
		return nil, errInvalid("limit must not be negative.")
	}
	in, err := c.s.chat.CustomerReadable(ctx, s.interactionID)
	if err != nil {
		return nil, err
	}
	if err := chat.CheckPositions(in, args.FromIndex, 0); err != nil {
		return nil, err
	}
	evs, err := c.s.chat.Transcript(ctx, s.interactionID, args.FromIndex, args.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]eventJSON, len(evs))
	next := args.FromIndex
	for i, ev := range evs {
		out[i] = eventOf(ev)
		next = ev.Index + 1
	}
	limit := args.Limit
	if limit == 0 || limit > chat.MaxTranscriptPage {
		limit = chat.MaxTranscriptPage
	}
	return map[string]any{"events": out, "next_index": next, "more": len(evs) == limit, "timestamp": millis(time.Now())}, nil
}

func cmdUpdateUserData(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		UserData map[string]json.RawMessage `json:"user_data"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if len(args.UserData) == 0 {
		return nil, errInvalid("user_data must be an object with at least one key.")
	}
	res, err := c.s.chat.ChangeUserData(ctx, s.party, id, userdata.ChangesOf(args.UserData))
	if err != nil {
		return nil, err
	}
	return map[string]any{"timestamp": millis(res.At)}, nil
}

func cmdGetUserData(ctx context.Context, c *conn, _ string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		Key string `json:"key"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	if _, err := c.s.chat.CustomerReadable(ctx, s.interactionID); err != nil {
		return nil, err
	}
	v, ok, err := c.s.chat.CustomerUserData(ctx, s.interactionID, args.Key)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	if ok {
		out[args.Key] = v
	}
	return map[string]any{"user_data": out, "timestamp": millis(time.Now())}, nil
}

func cmdDeleteUserData(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		Key string `json:"key"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	res, err := c.s.chat.ChangeUserData(ctx, s.party, id, []userdata.Change{{Key: args.Key}})
	if err != nil {
		return nil, err
	}
	return map[string]any{"timestamp": millis(res.At)}, nil
}

func cmdSendNotice(ctx context.Context, c *conn, id string, raw json.RawMessage) (any, error) {
	s, err := c.requireSession()
	if err != nil {
		return nil, err
	}
	var args struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	n, err := c.s.chat.SendNotice(ctx, s.party, id, args.Payload)
	if err != nil {
		return nil, err
	}
	return map[string]any{"seq": n.Seq, "timestamp": millis(n.At)}, nil
}
