package api

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/chat"
	"agentd/notify"
	"agentd/web"
)

// The event stream, GET /api/v1/events (docs/events.md): a websocket that sends every integration
// event after a position, in position order, then each new one as it commits. Events are read
// from Postgres, from the connection's last position, so any node can resume any stream, and a
// wake-up that is missed costs only the poll's delay, never an event.

// Events is what the stream reads (postgres.EventStore).
type Events interface {
	Events(ctx context.Context, after notify.Position, f notify.Filter, limit int) ([]notify.Event, error)
	Head(ctx context.Context) (notify.Position, error)
	Pruned(ctx context.Context) (notify.Position, error)
}

const (
	// streamAuthTimeout is how long a stream may wait for its auth frame.
	streamAuthTimeout = 10 * time.Second
	// streamPoll is how often a stream looks for new events when nothing woke it: events this
	// node heard of wake it at once; this catches a missed notification and the events of
	// transactions that were held back behind an older one.
	streamPoll = time.Second
	// streamBatch is how many events one read takes; streamBatches bounds the reads of one
	// refresh, so a stream far behind catches up in steps and stays responsive.
	streamBatch   = 500
	streamBatches = 4
	streamReadMax = 16 << 10
	// streamRecheck is how many polls pass between checks of the stream's token: a revoked token
	// stops its open streams within streamRecheck × streamPoll.
	streamRecheck = 5
)

// CloseRevoked closes a stream whose token was revoked (or whose bound user was disabled).
var CloseRevoked = web.CloseReason{Code: websocket.ClosePolicyViolation, Text: "token revoked"}

// streamMark is the one mark of a stream connection: "read again from your position".
var streamMark = web.Mark{Kind: chat.NotifyEvents, Key: "stream"}

// CloseAuth closes a stream whose first-frame authentication failed or never came.
var CloseAuth = web.CloseReason{Code: websocket.ClosePolicyViolation, Text: "unauthorized"}

// streamConn is one event-stream socket.
type streamConn struct {
	*web.Conn
	s *Surface

	mu     sync.Mutex // guards what follows: set by the read pump, read by the write pump
	token  *notify.Token
	filter notify.Filter
	pos    notify.Position
	live   bool // subscribed: the write pump sends events
	// pending is the subscription of the query string, until the auth frame starts it.
	pending *subscription
	// secret is the token the stream authenticated with, kept in memory to check it again:
	// a revoked token (or a disabled bound user) closes the stream (write pump only after start).
	secret string
	ticks  int
}

// subscription is the filter and start of a stream, from the query string or a subscribe frame.
type subscription struct {
	From        string   `json:"from"`
	Services    []string `json:"services"`
	Agent       string   `json:"agent"`
	Interaction string   `json:"interaction"`
	Types       []string `json:"types"`
}

func querySubscription(c echo.Context) subscription {
	split := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	q := c.QueryParams()
	return subscription{From: q.Get("from"), Services: split(q.Get("service")), Agent: q.Get("agent"),
		Interaction: q.Get("interaction"), Types: split(q.Get("types"))}
}

// handleEvents upgrades to the event stream. With an Authorization header the token is checked
// before the upgrade (401/403/429 as JSON, like every API route); without one the first frame
// must be {"type": "auth", "token": "agd_…"} within 10 s.
func (s *Surface) handleEvents(c echo.Context) error {
	if err := refuseURLToken(c); err != nil {
		return err
	}
	sub := querySubscription(c)
	var token *notify.Token
	var f notify.Filter
	var pos notify.Position
	if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
		t, err := s.authenticate(c, h, notify.ScopeEvents)
		if err != nil {
			return err
		}
		if f, pos, err = s.resolve(c.Request().Context(), t, sub); err != nil {
			return err
		}
		token = &t
	} else if !websocket.IsWebSocketUpgrade(c.Request()) {
		return unauthorized(c, "unauthorized", "Send an API token as Authorization: Bearer <token>, or in the stream's first frame.")
	}
	if s.sockets == nil || s.events == nil {
		return agentd.Errorf(agentd.EUNAVAILABLE, "unavailable", "The event stream is not available on this node.")
	}
	if !websocket.IsWebSocketUpgrade(c.Request()) {
		return agentd.Errorf(agentd.EINVALID, "websocket_required", "The event stream is a websocket: connect with Upgrade: websocket.")
	}
	opts := web.ConnOptions{Surface: "events", ReadLimit: streamReadMax, TickEvery: streamPoll, Held: true,
		FramesPerSecond: 5, FrameBurst: 10}
	return s.sockets.Serve(c, opts, func(wc *web.Conn) (web.Handler, web.Subscriber, *web.CloseReason) {
		sc := &streamConn{Conn: wc, s: s}
		s.streams.add(sc)
		if token != nil {
			sc.secret = bearerSecret(c.Request().Header.Get(echo.HeaderAuthorization))
			sc.start(*token, f, pos)
			return sc, sc, nil
		}
		timer := time.AfterFunc(streamAuthTimeout, func() {
			if !sc.authenticated() {
				sc.Send(web.Error("unauthorized", "Authenticate within 10 s: send {\"type\": \"auth\", \"token\": \"agd_…\"} first."))
				sc.CloseAfterSend(CloseAuth)
			}
		})
		go func() { <-wc.Done(); timer.Stop() }()
		sc.pendingSub(sub)
		return sc, sc, nil
	})
}

// pending is the subscription from the query string, kept until the auth frame.
func (sc *streamConn) pendingSub(sub subscription) {
	sc.mu.Lock()
	sc.pending = &sub
	sc.mu.Unlock()
}

func (sc *streamConn) authenticated() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.token != nil
}

func errorFrame(err error) web.ErrorFrame {
	code, msg := agentd.ErrorCode(err), agentd.ErrorMessage(err)
	if agentd.ErrorClass(err) == agentd.EINTERNAL {
		code, msg = "internal", "Something went wrong on our side."
	}
	return web.Error(code, msg)
}

// start subscribes an authenticated stream and lets it flush.
func (sc *streamConn) start(t notify.Token, f notify.Filter, pos notify.Position) {
	sc.mu.Lock()
	sc.token, sc.filter, sc.pos, sc.live, sc.pending = &t, f, pos, true, nil
	sc.mu.Unlock()
	sc.Send(map[string]any{"type": "subscribed", "position": pos})
	sc.Mark(streamMark)
	sc.Release()
}

// subscribe resolves sub for t and starts the stream with it.
func (sc *streamConn) subscribe(ctx context.Context, t notify.Token, sub subscription) error {
	f, pos, err := sc.s.resolve(ctx, t, sub)
	if err != nil {
		return err
	}
	sc.start(t, f, pos)
	return nil
}

// resolve checks a subscription against the token: a token bound to an agent sees only that
// agent's interactions, whatever the filter asks for.
func (s *Surface) resolve(ctx context.Context, t notify.Token, sub subscription) (notify.Filter, notify.Position, error) {
	var f notify.Filter
	for _, ty := range sub.Types {
		if !notify.Known(notify.Type(ty)) {
			return f, notify.Position{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "Unknown event type %q.", ty)
		}
		f.Types = append(f.Types, notify.Type(ty))
	}
	if len(sub.Services) > 20 || len(sub.Types) > 20 || len(sub.Agent) > 64 {
		return f, notify.Position{}, agentd.Errorf(agentd.EINVALID, "invalid_argument", "Too many filter values.")
	}
	f.Services, f.Agent = sub.Services, sub.Agent
	if sub.Interaction != "" {
		if !uuidRE.MatchString(sub.Interaction) {
			return f, notify.Position{}, agentd.Errorf(agentd.EINVALID, "invalid_id", "interaction must be an interaction id.")
		}
		f.InteractionID = strings.ToLower(sub.Interaction)
	}
	if t.UserID != 0 {
		f.AgentID = t.UserID
	}
	if sub.From == "" || sub.From == "now" {
		pos, err := s.events.Head(ctx)
		return f, pos, err
	}
	pos, err := notify.ParsePosition(sub.From)
	if err != nil {
		return f, pos, agentd.Errorf(agentd.EINVALID, "invalid_position", "from must be a position from an event, 0 for the start, or now.")
	}
	pruned, err := s.events.Pruned(ctx)
	if err != nil {
		return f, pos, err
	}
	if pos != (notify.Position{}) && pos.Less(pruned) {
		return f, pos, agentd.Errorf(agentd.ECONFLICT, "position_expired",
			"Events after that position were pruned (AGENTD_EVENT_RETENTION); resume from 0 for every event kept, or from now.")
	}
	return f, pos, nil
}

// Notify is the hub's: a stream joins no room, so the hub has nothing for it (the surface's
// Broadcast wakes it instead).
func (sc *streamConn) Notify(chat.Notification) {}

// HandleFrame handles the client's frames: auth (first-frame authentication) and subscribe
// (a new filter and start position).
func (sc *streamConn) HandleFrame(ctx context.Context, typ int, frame []byte) {
	var f struct {
		Type  string `json:"type"`
		Token string `json:"token"`
		subscription
	}
	if typ != websocket.TextMessage || json.Unmarshal(frame, &f) != nil {
		sc.Send(web.Error("bad_frame", "Frames are JSON objects with a type: auth or subscribe."))
		return
	}
	switch f.Type {
	case "auth":
		if sc.authenticated() {
			sc.Send(web.Error("invalid_state", "This stream is authenticated already."))
			return
		}
		t, err := sc.s.tokens.Authenticate(ctx, f.Token)
		if err == nil && !t.Has(notify.ScopeEvents) {
			err = agentd.Errorf(agentd.EFORBIDDEN, "insufficient_scope", "This token lacks the %q scope.", notify.ScopeEvents)
		}
		if err == nil {
			sc.mu.Lock()
			sub := sc.pending
			sc.mu.Unlock()
			if f.From != "" || f.Services != nil || f.Agent != "" || f.Interaction != "" || f.Types != nil || sub == nil {
				sub = &f.subscription
			}
			sc.mu.Lock()
			sc.secret = f.Token
			sc.mu.Unlock()
			err = sc.subscribe(ctx, t, *sub)
		}
		if err != nil {
			sc.Send(errorFrame(err))
			if c := agentd.ErrorClass(err); c == agentd.EUNAUTHORIZED || c == agentd.EFORBIDDEN {
				sc.CloseAfterSend(CloseAuth)
			}
		}
	case "subscribe":
		sc.mu.Lock()
		t := sc.token
		sc.mu.Unlock()
		if t == nil {
			sc.Send(web.Error("unauthorized", "Authenticate first: send {\"type\": \"auth\", \"token\": \"agd_…\"}."))
			return
		}
		if err := sc.subscribe(ctx, *t, f.subscription); err != nil {
			sc.Send(errorFrame(err))
		}
	default:
		sc.Send(web.Error("bad_frame", "Unknown frame type; the stream reads auth and subscribe."))
	}
}

// Flush sends the events after the stream's position, in order, advancing the position after
// each one written. A stream far behind sends streamBatches batches and marks itself to go on.
func (sc *streamConn) Flush(ctx context.Context, _ web.Dirty) error {
	for range streamBatches {
		sc.mu.Lock()
		live, pos, f := sc.live, sc.pos, sc.filter
		sc.mu.Unlock()
		if !live {
			return nil
		}
		evs, err := sc.s.events.Events(ctx, pos, f, streamBatch)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := sc.Write(map[string]any{"type": "event", "event": e}); err != nil {
				return err
			}
			sc.mu.Lock()
			if sc.pos == pos { // a subscribe frame meanwhile starts over from its own position
				sc.pos, pos = e.Position, e.Position
			}
			sc.mu.Unlock()
		}
		if len(evs) < streamBatch {
			return nil
		}
	}
	sc.Mark(streamMark)
	return nil
}

// Tick is the poll: it catches what no notification announced. Every streamRecheck ticks it
// checks the token again: a revoked token, or a bound user disabled since, closes the stream.
func (sc *streamConn) Tick(ctx context.Context) {
	sc.Mark(streamMark)
	sc.mu.Lock()
	secret, live := sc.secret, sc.live
	sc.mu.Unlock()
	if sc.ticks++; !live || sc.ticks%streamRecheck != 0 {
		return
	}
	if _, err := sc.s.tokens.Authenticate(ctx, secret); agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
		_ = sc.Write(web.Error("unauthorized", "The stream's token was revoked.")) // Tick runs in the write pump
		sc.Close(CloseRevoked)
	}
}

// bearerSecret is the token of an Authorization: Bearer header.
func bearerSecret(h string) string {
	_, secret, _ := strings.Cut(h, " ")
	return strings.TrimSpace(secret)
}

// Resync wakes the stream after the LISTEN connection came back.
func (sc *streamConn) Resync() { sc.Mark(streamMark) }

// Streams is the set of a node's event-stream connections, a receiver of the node's fan-out
// (built first, as the stores announce to it): Broadcast wakes them all.
type Streams struct {
	mu    sync.Mutex
	conns map[*streamConn]struct{}
}

func (st *Streams) add(sc *streamConn) {
	st.mu.Lock()
	if st.conns == nil {
		st.conns = map[*streamConn]struct{}{}
	}
	st.conns[sc] = struct{}{}
	st.mu.Unlock()
	go func() {
		<-sc.Done()
		st.mu.Lock()
		delete(st.conns, sc)
		st.mu.Unlock()
	}()
}

// NewStreams returns an empty set of streams.
func NewStreams() *Streams { return &Streams{} }

// Broadcast wakes every event stream of this node: a notification comes with every committed
// change that emits events (each stream's read finds out whether it wants any of them). It never
// blocks. The node's fan-out calls it (cmd/agentd/app.go).
func (st *Streams) Broadcast(n chat.Notification) {
	if n.Kind == chat.NotifyTyping {
		return // typing commits nothing and emits no event
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for sc := range st.conns {
		sc.Mark(streamMark)
	}
}
