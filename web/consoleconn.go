package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/web/templates"
)

// heartbeatPeriod is how often a console tells the database its agent is still there; it must be
// well below agent.Config.AbsentGrace.
const heartbeatPeriod = 20 * time.Second

// consoleConn is one agent console socket. The server renders every change as templ fragments
// ("ops") and the page's console.js applies them; the socket carries commands the other way.
// Like the customer conn it has one read pump (running commands in order) and one write pump
// (the only writer, which also reads what changed from Postgres).
type consoleConn struct {
	id      string
	ws      *websocket.Conn
	srv     *Server
	logger  *slog.Logger
	userID  int64
	csrf    string
	send    chan []byte
	wake    chan struct{}
	done    chan struct{}
	closing sync.Once
	limiter *rate.Limiter
	// ready is set once the page proved itself with the CSRF token; nothing is rendered before.
	ready atomic.Bool

	mu         sync.Mutex // guards the dirty marks
	agentDirty bool
	queueDirty bool
	events     map[string]bool // interaction id → transcript may have news
	side       map[string]bool // interaction id → notices/UserData may have news
	typing     map[string]chat.Typing

	// Owned by the write pump.
	user  agent.User
	chats map[string]*consoleChat
}

// consoleChat is the write pump's knowledge of one open chat panel.
type consoleChat struct {
	nextIndex int
	nextSeq   int64
	ended     bool
	pending   bool // a customer message waits for an answer (what the chat list shows)
}

type op struct {
	Op   string `json:"op"` // replace (outerHTML), html (innerHTML), append, remove
	ID   string `json:"id"`
	HTML string `json:"html,omitempty"`
}

func (s *Server) handleConsoleSocket(c echo.Context) error {
	r := c.Request()
	if origin := r.Header.Get("Origin"); origin != "" {
		// Only our own pages may open a console: a foreign page could otherwise ride the cookie.
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return agentd.Errorf(agentd.EFORBIDDEN, "origin_not_allowed", "The console can only be opened from this site.")
		}
	}
	ws, err := s.upgrader.Upgrade(c.Response(), r, nil)
	if err != nil {
		return nil
	}
	s.sockets.Add(1)
	defer s.sockets.Done()
	u := currentUser(c)
	csrf, _ := c.Get("csrf").(string)
	cc := &consoleConn{
		id: newConnID(), ws: ws, srv: s, userID: u.ID, user: u, csrf: csrf,
		send: make(chan []byte, sendQueue), wake: make(chan struct{}, 1), done: make(chan struct{}),
		limiter: rate.NewLimiter(20, 40),
		events:  map[string]bool{}, side: map[string]bool{}, typing: map[string]chat.Typing{},
		chats: map[string]*consoleChat{}, agentDirty: true, queueDirty: true,
	}
	cc.logger = s.logger.With("conn_id", cc.id, "agent_id", u.ID)
	if !s.hub.register(cc) {
		cc.closeWith(websocket.CloseGoingAway, "server shutting down")
		return nil
	}
	defer s.hub.unregister(cc)
	s.hub.watch(cc, u.ID, nil)
	if err := s.agents.Heartbeat(r.Context(), u); err != nil {
		cc.logger.Warn("heartbeat", "err", err)
	}
	go cc.writePump(s.ctx)
	cc.readPump(s.ctx)
	return nil
}

func (c *consoleConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *consoleConn) notify(n chat.Notification) {
	c.mu.Lock()
	switch n.Kind {
	case chat.NotifyAgent:
		c.agentDirty = true
	case chat.NotifyQueue:
		c.queueDirty = true
	case chat.NotifyEvents:
		c.events[n.InteractionID] = true
	case chat.NotifySide:
		c.side[n.InteractionID] = true
	case chat.NotifyTyping:
		if n.Typing != nil && n.Typing.Party.Type == chat.PartyClient {
			c.typing[n.InteractionID] = *n.Typing
		}
	}
	c.mu.Unlock()
	c.signal()
}

func (c *consoleConn) resync() {
	c.mu.Lock()
	c.agentDirty, c.queueDirty = true, true
	c.mu.Unlock()
	c.signal()
}

func (c *consoleConn) closeWith(code int, reason string) {
	c.closing.Do(func() {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		close(c.done)
		_ = c.ws.Close()
	})
}

func (c *consoleConn) enqueue(v any) {
	b, err := marshalFrame(v)
	if err != nil {
		c.logger.Error("encode frame", "err", err)
		return
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case c.send <- b:
	case <-c.done:
	case <-t.C:
		c.srv.metrics.dropped()
		c.closeWith(websocket.CloseTryAgainLater, "too slow")
	}
}

// enqueueClose asks the write pump to close the socket once everything queued before was written.
func (c *consoleConn) enqueueClose() {
	select {
	case c.send <- nil:
	case <-c.done:
	}
}

func (c *consoleConn) readPump(ctx context.Context) {
	defer c.closeWith(websocket.CloseNormalClosure, "")
	c.ws.SetReadLimit(64 << 10)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	hello := false
	for {
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		var in struct {
			ID   string          `json:"id"`
			Cmd  string          `json:"cmd"`
			Args json.RawMessage `json:"args"`
		}
		if json.Unmarshal(frame, &in) != nil || !validCommandID(in.ID) {
			c.enqueue(errorFrame{Type: "error", Error: errorJSON{Code: "bad_frame", Description: "Frames are JSON commands with an id."}})
			continue
		}
		if !hello {
			// The first frame proves the page came from us: it carries the session's CSRF token.
			var args struct {
				CSRF string `json:"csrf"`
			}
			_ = json.Unmarshal(in.Args, &args)
			if in.Cmd != "hello" || args.CSRF == "" || args.CSRF != c.csrf {
				c.enqueue(resultFrame{Type: "result", ID: in.ID, Error: &errorJSON{Code: "csrf", Description: "Reload the page."}})
				c.enqueueClose() // after the answer is written
				<-c.done
				return
			}
			hello = true
			c.enqueue(resultFrame{Type: "result", ID: in.ID, OK: true})
			c.ready.Store(true)
			c.signal() // first render of the live state
			continue
		}
		if !c.limiter.Allow() {
			c.enqueue(resultFrame{Type: "result", ID: in.ID, Error: &errorJSON{Code: "rate_limited", Description: "Too many actions; slow down."}})
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		start := time.Now()
		data, err := c.run(cctx, in.ID, in.Cmd, in.Args)
		cancel()
		code := "ok"
		if err != nil {
			code = agentd.ErrorCode(err)
		}
		c.srv.metrics.command("console", consoleCommandLabel(in.Cmd), code, time.Since(start))
		if err != nil {
			if agentd.ErrorClass(err) == agentd.EINTERNAL {
				c.logger.Error("console command failed", "cmd", in.Cmd, "err", err)
			}
			c.enqueue(resultFrame{Type: "result", ID: in.ID, Error: &errorJSON{Code: agentd.ErrorCode(err), Description: agentd.ErrorMessage(err)}})
			continue
		}
		c.enqueue(resultFrame{Type: "result", ID: in.ID, OK: true, Data: data})
	}
}

func (c *consoleConn) writePump(ctx context.Context) {
	ping := time.NewTicker(pingPeriod)
	beat := time.NewTicker(heartbeatPeriod)
	defer func() {
		ping.Stop()
		beat.Stop()
		c.closeWith(websocket.CloseNormalClosure, "")
	}()
	for {
		select {
		case <-c.done:
			return
		case b := <-c.send:
			if b == nil {
				c.closeWith(websocket.ClosePolicyViolation, "csrf")
				return
			}
			if !c.write(b) {
				return
			}
		case <-c.wake:
			if !c.ready.Load() {
				continue // the dirty marks stay set until the hello arrives
			}
			if !c.flush(ctx) {
				return
			}
		case <-beat.C:
			if err := c.srv.agents.Heartbeat(ctx, c.user); err != nil && ctx.Err() == nil {
				c.logger.Warn("heartbeat", "err", err)
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (c *consoleConn) write(b []byte) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, b) == nil
}

func fragment(ctx context.Context, comp templ.Component) (string, error) {
	var buf bytes.Buffer
	err := comp.Render(ctx, &buf)
	return buf.String(), err
}

// flush renders what changed since the last flush and sends it as one ops frame.
func (c *consoleConn) flush(ctx context.Context) bool {
	c.mu.Lock()
	agentDirty, queueDirty := c.agentDirty, c.queueDirty
	events, side, typing := c.events, c.side, c.typing
	c.agentDirty, c.queueDirty = false, false
	c.events, c.side, c.typing = map[string]bool{}, map[string]bool{}, map[string]chat.Typing{}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	var ops []op
	add := func(kind, id string, comp templ.Component) error {
		html, err := fragment(ctx, comp)
		if err == nil {
			ops = append(ops, op{Op: kind, ID: id, HTML: html})
		}
		return err
	}
	err := c.render(ctx, agentDirty, queueDirty, events, side, typing, add, &ops)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			c.logger.Warn("console refresh", "err", err)
		}
		// Try again shortly: marking everything dirty re-reads it all from Postgres.
		c.mu.Lock()
		c.agentDirty, c.queueDirty = true, true
		c.mu.Unlock()
		time.AfterFunc(time.Second, c.signal)
	}
	if len(ops) == 0 {
		return true
	}
	b, _ := marshalFrame(map[string]any{"type": "ops", "ops": ops})
	return c.write(b)
}

func (c *consoleConn) render(ctx context.Context, agentDirty, queueDirty bool, events, side map[string]bool, typing map[string]chat.Typing,
	add func(kind, id string, comp templ.Component) error, ops *[]op) error {
	s := c.srv
	listDirty := false
	var assignments []agent.Assignment
	if agentDirty {
		u, err := s.agents.User(ctx, c.userID)
		if err != nil {
			return err
		}
		if u.Disabled {
			c.closeWith(websocket.ClosePolicyViolation, "account disabled")
			return nil
		}
		c.user = u
		if svcs, err := s.agents.Services(ctx); err == nil {
			var ids []int64
			for _, sv := range svcs {
				for _, name := range u.Services {
					if sv.Name == name {
						ids = append(ids, sv.ID)
					}
				}
			}
			s.hub.watch(c, u.ID, ids)
		}
		if err := add("replace", "presence", templates.Presence(presenceView(u))); err != nil {
			return err
		}
		if assignments, err = s.agents.Assignments(ctx, u); err != nil {
			return err
		}
		listDirty, queueDirty = true, true
		active := map[string]agent.Assignment{}
		for _, a := range assignments {
			if a.State == agent.AssignActive {
				active[a.InteractionID] = a
			}
		}
		for iid := range c.chats {
			if _, ok := active[iid]; !ok {
				delete(c.chats, iid)
				s.hub.detach(c, iid, 0)
				*ops = append(*ops, op{Op: "remove", ID: "chat-" + iid})
			}
		}
		for _, a := range assignments {
			if _, ok := active[a.InteractionID]; !ok || c.chats[a.InteractionID] != nil {
				continue
			}
			p, err := s.panelView(ctx, u, a)
			if err != nil {
				return err
			}
			c.chats[a.InteractionID] = &consoleChat{ended: a.Interaction.State.Over(), pending: a.Interaction.PendingSince != nil}
			s.hub.attach(c, a.InteractionID, 0)
			if err := add("append", "chat-panels", templates.ChatPanel(p)); err != nil {
				return err
			}
			events[a.InteractionID], side[a.InteractionID] = true, true
		}
	}
	if queueDirty {
		qs, err := s.queueView(ctx, c.user)
		if err != nil {
			return err
		}
		if err := add("replace", "queues", templates.Queues(qs)); err != nil {
			return err
		}
	}
	for iid := range events {
		ch := c.chats[iid]
		if ch == nil {
			continue
		}
		for {
			evs, err := s.chat.Transcript(ctx, iid, ch.nextIndex, chat.MaxTranscriptPage)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := add("append", "transcript-"+iid, templates.TranscriptItem(eventView(ev))); err != nil {
					return err
				}
				ch.nextIndex = ev.Index + 1
				// The chat list shows whether a customer message waits for an answer: it is
				// redrawn when that changes, not for every message (unread marks are the page's).
				if ev.Kind == chat.EventMessage && ev.Party != nil {
					if waiting := ev.Party.Type == chat.PartyClient; waiting != ch.pending {
						ch.pending, listDirty = waiting, true
					}
				}
				if ev.Kind == chat.EventSessionEnded && !ch.ended {
					ch.ended, listDirty = true, true
					in, err := s.chat.Interaction(ctx, iid)
					if err != nil {
						return err
					}
					av, err := s.actionsView(ctx, c.user, in)
					if err != nil {
						return err
					}
					if err := add("html", "actions-"+iid, templates.Actions(av)); err != nil {
						return err
					}
				}
			}
			if len(evs) < chat.MaxTranscriptPage {
				break
			}
		}
	}
	for iid := range side {
		ch := c.chats[iid]
		if ch == nil {
			continue
		}
		items, err := s.chat.SideItems(ctx, iid, ch.nextSeq, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		udChanged := false
		for _, it := range items {
			ch.nextSeq = it.Seq + 1
			if it.Notice != nil {
				from := nameOr(it.Notice.Party.Name)
				if it.Notice.Party.Type != chat.PartyClient {
					from = "You → customer"
				}
				if err := add("append", "notices-"+iid, templates.NoticeItem(templates.NoticeView{Seq: it.Seq, From: from,
					Payload: string(it.Notice.Payload), Time: it.Notice.At.Format("15:04:05")})); err != nil {
					return err
				}
			} else {
				udChanged = true
			}
		}
		if udChanged {
			entries, err := s.chat.UserData(ctx, iid)
			if err != nil {
				return err
			}
			if err := add("replace", "ud-"+iid, templates.UserDataTable(userDataView(iid, entries))); err != nil {
				return err
			}
			if err := add("html", "cobrowse-"+iid, templates.CoBrowse(s.coBrowseView(iid, entries))); err != nil {
				return err
			}
		}
	}
	for iid, t := range typing {
		if c.chats[iid] == nil {
			continue
		}
		name := ""
		if t.IsTyping {
			name = nameOr(t.Party.Name)
		}
		if err := add("html", "typing-"+iid, templates.TypingLine(name, t.Text)); err != nil {
			return err
		}
	}
	if listDirty {
		if assignments == nil {
			var err error
			if assignments, err = s.agents.Assignments(ctx, c.user); err != nil {
				return err
			}
		}
		offers, items := s.listViews(ctx, assignments)
		if err := add("replace", "offers", templates.Offers(offers)); err != nil {
			return err
		}
		if err := add("replace", "chats", templates.ChatList(items)); err != nil {
			return err
		}
	}
	return nil
}

// consoleCommandLabel keeps the metric label set bounded to the known console commands.
func consoleCommandLabel(cmd string) string {
	switch cmd {
	case "set_state", "accept", "decline", "send", "typing", "set_userdata", "delete_userdata", "send_notice",
		"cobrowse_joined", "transfer", "end", "wrapup", "canned":
		return cmd
	}
	return "unknown"
}
