package console

import (
	"context"
	"maps"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/web"
	"agentd/web/templates"
)

const (
	// sessionCheck is how often an open console checks that its browser session still lives:
	// signing out and disabling the account close consoles at once on every node (through the
	// agent's notification), a session that reaches its lifetime within this period.
	sessionCheck = 5 * time.Second
	// heartbeatEvery is how many session checks make a heartbeat: every 20 s the console tells
	// the database its agent is still there (well below the router's AbsentGrace, 90 s) and
	// extends its browser session, which an agent working all day in one console would otherwise
	// see expire.
	heartbeatEvery = 4
	// readLimit is the largest console frame; a larger one closes the socket with 1009.
	readLimit = 64 << 10
	// framesPerSecond and frameBurst limit every frame of a console socket, commands and anything
	// else, before it is decoded (web.ConnOptions). A person clicking and typing, with typing
	// notifications sent every 1.5 s at most, stays far below.
	framesPerSecond = 20
	frameBurst      = 40
	// commandTimeout bounds one command, database work included.
	commandTimeout = 15 * time.Second
)

// conn is one agent console socket on the web core's Conn. Its read pump runs the agent's
// commands in order (HandleFrame); its write pump renders what changed as fragments (Flush) and
// beats the agent's heartbeat (Tick).
type conn struct {
	*web.Conn
	s      *Surface
	userID int64
	csrf   string
	token  string      // the browser session the console was opened with
	hello  atomic.Bool // the page proved itself with the CSRF token; nothing is rendered before

	// Owned by the write pump.
	user  agent.User
	chats map[string]*chatState
	ticks int
	// redraw is what a refresh decided to redraw and has not drawn yet. It lives on the
	// connection, not in one render: a refresh that fails midway is retried with its marks given
	// back, but the events it already read are not read again, so what they decided must not be
	// lost with it.
	redraw struct {
		list, recent bool
		typing       map[string]bool // chats whose typing line ends: the customer sent, or the chat ended
	}
}

// chatState is the write pump's knowledge of one open chat panel.
type chatState struct {
	nextIndex int
	nextSeq   int64
	ended     bool
	pending   bool      // a customer message waits for an answer (what the chat list shows)
	lastSent  time.Time // when the customer's last message was stored: its typing ended then
	endSeen   bool      // the session_ended event was read; the panel turns read-only once drawn
	monitored string    // the "Monitored by" line drawn
}

type op struct {
	Op   string `json:"op"` // replace (outerHTML), html (innerHTML), append, remove
	ID   string `json:"id"`
	HTML string `json:"html,omitempty"`
}

func (s *Surface) handleSocket(c echo.Context) error {
	r := c.Request()
	if origin := r.Header.Get("Origin"); origin != "" {
		// Only our own pages may open a console: a foreign page could otherwise ride the cookie.
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return agentd.Errorf(agentd.EFORBIDDEN, "origin_not_allowed", "The console can only be opened from this site.")
		}
	}
	u := web.CurrentUser(c)
	csrf := web.CSRF(c)
	token, _ := c.Get("session_token").(string)
	if err := s.desk.Heartbeat(r.Context(), u); err != nil {
		s.logger.Warn("heartbeat", "agent_id", u.ID, "err", err)
	}
	opts := web.ConnOptions{Surface: "console", ReadLimit: readLimit, WriteWait: s.writeWait, TickEvery: sessionCheck, Held: true,
		FramesPerSecond: framesPerSecond, FrameBurst: frameBurst}
	return s.sockets.Serve(c, opts, func(wc *web.Conn) (web.Handler, web.Subscriber, *web.CloseReason) {
		cc := &conn{Conn: wc, s: s, userID: u.ID, csrf: csrf, token: token, user: u, chats: map[string]*chatState{}}
		// The first refresh, once the hello arrives, renders everything.
		cc.Resync()
		return cc, cc, nil
	})
}

// Notify turns a notification into marks; it never blocks (the hub calls it).
func (c *conn) Notify(n chat.Notification) {
	switch n.Kind {
	case chat.NotifyAgent:
		c.Mark(web.Mark{Kind: chat.NotifyAgent})
	case chat.NotifyQueue:
		c.Mark(web.Mark{Kind: chat.NotifyQueue})
	case chat.NotifyEvents:
		c.Mark(web.Mark{Kind: chat.NotifyEvents, Key: n.InteractionID})
	case chat.NotifySide:
		c.Mark(web.Mark{Kind: chat.NotifySide, Key: n.InteractionID})
	case chat.NotifyTyping:
		if n.Typing != nil && n.Typing.Party.Type == chat.PartyClient {
			c.SetTyping(n.InteractionID, *n.Typing)
		}
	}
}

// Tick checks the browser session every sessionCheck and, every heartbeatEvery ticks, beats the
// agent's heartbeat and extends the session (write pump).
func (c *conn) Tick(ctx context.Context) {
	c.ticks++
	if c.ticks%heartbeatEvery == 0 {
		c.Mark(web.Mark{Kind: markMonitors})
		if err := c.s.desk.Heartbeat(ctx, c.user); err != nil && ctx.Err() == nil {
			c.Logger().Warn("heartbeat", "err", err)
		}
		if _, _, err := c.s.accounts.WebSession(ctx, c.token); err != nil {
			c.sessionGone(err)
		}
		return
	}
	if err := c.s.accounts.SessionAlive(ctx, c.token); err != nil {
		c.sessionGone(err)
	}
}

// sessionGone closes the console when err says its session ended (signed out, expired, or the
// account disabled). Other errors (the database, briefly) leave it open: the next check decides.
func (c *conn) sessionGone(err error) {
	if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
		c.Logger().Info("console closed: its session ended")
		c.Close(web.CloseSessionEnded)
	} else if err != nil {
		c.Logger().Warn("session check", "err", err)
	}
}

// HandleFrame runs one command from the page (read pump), for the frames within the connection's
// frame limit. The first frame must be the hello that carries the session's CSRF token.
func (c *conn) HandleFrame(ctx context.Context, _ int, frame []byte) {
	in, ok := c.ReadCommand(frame)
	if !ok {
		return
	}
	if !c.hello.Load() {
		// The first frame proves the page came from us: it carries the session's CSRF token.
		if !c.CheckHello(in, c.csrf) {
			return
		}
		c.hello.Store(true)
		c.Send(web.Result(in.ID, nil))
		c.Release() // first render of the live state
		return
	}
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	start := time.Now()
	data, err := c.run(cctx, in.ID, in.Cmd, in.Args)
	cancel()
	code := "ok"
	if err != nil {
		code = agentd.ErrorCode(err)
	}
	c.s.metrics.Command("console", commandLabel(in.Cmd), code, time.Since(start))
	if err != nil {
		web.LogCommandError(ctx, c.Logger(), in.Cmd, err)
		c.Send(web.Failed(in.ID, agentd.ErrorCode(err), agentd.ErrorMessage(err)))
		return
	}
	c.Send(web.Result(in.ID, data))
}

// Flush renders what changed since the last flush and sends it as one ops frame (write pump).
// When a read fails midway, what was rendered so far is still sent (the positions advanced past
// it), and the error makes the core give every mark back: the next flush re-reads the rest.
func (c *conn) Flush(ctx context.Context, d web.Dirty) error {
	var ops []op
	add := func(kind, id string, comp templ.Component) error {
		html, err := web.Fragment(ctx, comp)
		if err == nil {
			ops = append(ops, op{Op: kind, ID: id, HTML: html})
		}
		return err
	}
	err := c.render(ctx, &d, add, &ops)
	if len(ops) > 0 {
		if werr := c.Write(map[string]any{"type": "ops", "ops": ops}); werr != nil {
			return werr
		}
	}
	return err
}

// render adds the fragments for what d says changed. A resync re-reads everything: presence,
// queues, and every open chat's transcript and side channel from its last position.
func (c *conn) render(ctx context.Context, d *web.Dirty, add func(kind, id string, comp templ.Component) error, ops *[]op) error {
	s := c.s
	queueDirty := d.Has(chat.NotifyQueue, "")
	events, side := map[string]bool{}, map[string]bool{}
	for _, iid := range d.Keys(chat.NotifyEvents) {
		events[iid] = true
	}
	for _, iid := range d.Keys(chat.NotifySide) {
		side[iid] = true
	}
	if d.Resync {
		for iid := range c.chats {
			events[iid], side[iid] = true, true
		}
	}
	if c.redraw.typing == nil {
		c.redraw.typing = map[string]bool{}
	}
	var assignments []agent.Assignment
	if d.Has(chat.NotifyAgent, "") {
		// An agent notification may be the account disabled or a session signed out: check both
		// before rendering anything.
		u, err := s.accounts.User(ctx, c.userID)
		if err != nil {
			return err
		}
		if u.Disabled {
			c.Close(web.CloseAccountDisabled)
			return nil
		}
		if err := s.accounts.SessionAlive(ctx, c.token); err != nil {
			if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
				c.sessionGone(err)
				return nil
			}
			return err
		}
		c.user = u
		svcs, err := s.desk.Services(ctx)
		if err != nil {
			return err
		}
		var ids []int64
		for _, sv := range svcs {
			for _, name := range u.Services {
				if sv.Name == name {
					ids = append(ids, sv.ID)
				}
			}
		}
		s.hub.Watch(c, u.ID, ids)
		if err := add("replace", "presence", templates.Presence(presenceView(u))); err != nil {
			return err
		}
		if assignments, err = s.desk.Assignments(ctx, u); err != nil {
			return err
		}
		c.redraw.list, queueDirty = true, true
		active := map[string]agent.Assignment{}
		for _, a := range assignments {
			if a.State == agent.AssignActive {
				active[a.InteractionID] = a
			}
		}
		for iid := range c.chats {
			if _, ok := active[iid]; !ok {
				delete(c.chats, iid)
				s.hub.Detach(c, iid)
				*ops = append(*ops, op{Op: "remove", ID: "chat-" + iid})
				c.redraw.recent = true // wrapped up (or transferred): it may now be a recent chat
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
			c.chats[a.InteractionID] = &chatState{ended: a.Interaction.State.Over(), pending: a.Interaction.PendingSince != nil}
			s.hub.Attach(c, a.InteractionID)
			if err := add("append", "chat-panels", templates.ChatPanel(p)); err != nil {
				return err
			}
			events[a.InteractionID], side[a.InteractionID] = true, true
		}
	}
	if d.Has(chat.NotifyAgent, "") || d.Has(markMonitors, "") {
		if err := c.renderMonitors(ctx, add); err != nil {
			return err
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
						ch.pending, c.redraw.list = waiting, true
					}
					if ev.Party.Type == chat.PartyClient {
						// The message is what the customer was typing: the preview goes.
						ch.lastSent, c.redraw.typing[iid] = ev.At, true
					}
				}
				if ev.Kind == chat.EventSessionEnded {
					ch.endSeen = true
				}
			}
			if len(evs) < chat.MaxTranscriptPage {
				break
			}
		}
		if ch.endSeen && !ch.ended {
			if err := c.renderEnded(ctx, iid, add); err != nil {
				return err
			}
			ch.ended, c.redraw.list, c.redraw.typing[iid] = true, true, true
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
			if it.Notice == nil {
				udChanged = true
			} else if w, ok := it.Notice.Whisper(); ok {
				if err := add("append", "transcript-"+iid, templates.WhisperItem(whisperView(*it.Notice, w))); err != nil {
					return err
				}
			} else {
				if err := add("append", "notices-"+iid, templates.NoticeItem(noticeView(it.Seq, *it.Notice))); err != nil {
					return err
				}
			}
		}
		if udChanged {
			entries, err := s.chat.UserData(ctx, iid)
			if err != nil {
				return err
			}
			if err := add("replace", "ud-"+iid, templates.UserDataTable(consoleUserData(iid, entries, ch.ended))); err != nil {
				return err
			}
			if err := add("html", "cobrowse-"+iid, templates.CoBrowse(s.coBrowseView(c.user, iid, entries, ch.ended))); err != nil {
				return err
			}
		}
	}
	typing := maps.Clone(d.Typing())
	if typing == nil {
		typing = map[string]chat.Typing{}
	}
	for iid := range c.redraw.typing {
		if _, ok := typing[iid]; !ok {
			typing[iid] = chat.Typing{} // not typing
		}
	}
	for iid, t := range typing {
		ch := c.chats[iid]
		if ch == nil {
			continue
		}
		name := ""
		// Typing that the customer's message (or the end) has overtaken is over: notifications
		// and transcript events travel separately, so a late "typing" must not outlive them.
		if t.IsTyping && !ch.ended && t.At.After(ch.lastSent) {
			name = nameOr(t.Party.Name)
		}
		if err := add("html", "typing-"+iid, templates.TypingLine(name, t.Text)); err != nil {
			return err
		}
		delete(c.redraw.typing, iid)
	}
	if c.redraw.recent {
		recent, err := s.recentView(ctx, c.user)
		if err != nil {
			return err
		}
		if err := add("replace", "recent", templates.Recent(recent)); err != nil {
			return err
		}
		c.redraw.recent = false
	}
	if c.redraw.list {
		if assignments == nil {
			var err error
			if assignments, err = s.desk.Assignments(ctx, c.user); err != nil {
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
		c.redraw.list = false
	}
	return nil
}

// renderEnded turns the panel of a chat that just ended read-only: the wrap-up form replaces End
// and Transfer, the composer, the UserData form and the notice form are disabled or go, and the
// status line says so.
func (c *conn) renderEnded(ctx context.Context, iid string, add func(kind, id string, comp templ.Component) error) error {
	s := c.s
	in, err := s.chat.Interaction(ctx, iid)
	if err != nil {
		return err
	}
	av, err := s.actionsView(ctx, c.user, in)
	if err != nil {
		return err
	}
	entries, err := s.chat.UserData(ctx, iid)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		kind, id string
		comp     templ.Component
	}{
		{"html", "actions-" + iid, templates.Actions(av)},
		{"html", "composer-" + iid, templates.Composer(iid, true)},
		{"html", "udform-" + iid, templates.UserDataForm(iid, true)},
		{"html", "noticeform-" + iid, templates.NoticeForm(iid, true)},
		{"replace", "ud-" + iid, templates.UserDataTable(consoleUserData(iid, entries, true))},
		{"html", "cobrowse-" + iid, templates.CoBrowse(s.coBrowseView(c.user, iid, entries, true))},
		{"html", "console-status", templates.EndedStatus(nameOr(in.CustomerName), reasonLabel(in.EndReason))},
	} {
		if err := add(f.kind, f.id, f.comp); err != nil {
			return err
		}
	}
	return nil
}

// commandLabel keeps the metric label set bounded to the known console commands.
func commandLabel(cmd string) string {
	switch cmd {
	case "set_state", "accept", "pick_up", "decline", "send", "typing", "set_userdata", "delete_userdata", "send_notice",
		"cobrowse_joined", "transfer", "end", "wrapup", "canned":
		return cmd
	}
	return "unknown"
}
