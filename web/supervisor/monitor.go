package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/templates"
)

// Supervision is the supervisor's live work on a chat (agent.Supervision). Each method checks the
// user's role itself.
type Supervision interface {
	StartMonitor(ctx context.Context, u agent.User, id, interactionID string) (agent.Monitor, error)
	RenewMonitor(ctx context.Context, m agent.Monitor) error
	StopMonitor(ctx context.Context, m agent.Monitor) error
	Whisper(ctx context.Context, u agent.User, interactionID, text string) (chat.Notice, error)
	BargeIn(ctx context.Context, u agent.User, interactionID string) (chat.Party, error)
	Send(ctx context.Context, u agent.User, interactionID, commandID, text string) (chat.Event, error)
	Leave(ctx context.Context, u agent.User, interactionID string) error
}

// LiveChat is what the monitor reads of a chat as it goes (chat.Service).
type LiveChat interface {
	Transcript(ctx context.Context, interactionID string, fromIndex, limit int) ([]chat.Event, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error)
	UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error)
}

// Accounts re-reads the supervisor for every command and checks the browser session
// (agent.Accounts).
type Accounts interface {
	User(ctx context.Context, id int64) (agent.User, error)
	SessionAlive(ctx context.Context, token string) error
}

// MonitorDeps is what the live monitor is built from (Deps.Monitor). Without it the monitor
// routes are not registered.
type MonitorDeps struct {
	Supervision Supervision
	Chat        LiveChat
	Accounts    Accounts
	Sockets     *web.Sockets
	Metrics     *web.Metrics // may be nil
	Logger      *slog.Logger
}

const (
	// monitorTick is how often the monitor socket renews its monitoring session's heartbeat
	// (well within postgres.MonitorTTL, 30 s) and checks its user and browser session.
	monitorTick = 5 * time.Second
	// monitorReadLimit is the largest frame a monitor page sends (a whisper of 4096 characters
	// fits many times).
	monitorReadLimit = 64 << 10
	// monitorFramesPerSecond and monitorFrameBurst limit what a monitor page sends.
	monitorFramesPerSecond = 10
	monitorFrameBurst      = 20
	// monitorCommandTimeout bounds one command, database work included.
	monitorCommandTimeout = 15 * time.Second
)

func (s *Surface) registerMonitor(g *echo.Group) {
	if s.mon.Sockets == nil {
		return
	}
	g.GET("/monitor/:id", s.handleMonitor)
	g.GET("/monitor/:id/ws", s.handleMonitorSocket)
}

// monitorID returns the interaction id of a monitor route, or interaction_not_found.
func (s *Surface) monitorID(c echo.Context) (chat.Interaction, error) {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return chat.Interaction{}, errNotFound()
	}
	in, err := s.chat.Interaction(c.Request().Context(), strings.ToLower(id))
	return in, notFound(err)
}

func (s *Surface) handleMonitor(c echo.Context) error {
	in, err := s.monitorID(c)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, templates.SupervisorMonitor(web.Viewer(c),
		templates.MonitorView{ID: in.ID, Customer: nameOr(in.CustomerName), Service: in.ServiceName, State: string(in.State)}))
}

// newMonitorID returns a random (version 4) UUID for a monitoring session.
func newMonitorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// monConn is one monitor page's socket on the web core's Conn: the read pump runs the
// supervisor's commands (HandleFrame), the write pump renders the chat as it goes (Flush) and
// renews the monitoring session (Tick).
type monConn struct {
	*web.Conn
	s      *Surface
	iid    string
	userID int64
	csrf   string
	token  string
	hello  atomic.Bool
	// monitor is set by the read pump at the hello, before Release, and read by the write pump
	// (Tick) and after Serve returned: Release and the pumps' ends order those reads after it.
	monitor atomic.Pointer[agent.Monitor]

	// Owned by the write pump.
	nextIndex int
	nextSeq   int64
	in        bool // this supervisor's party is in the chat (barged in)
	ended     bool // the chat's session_ended was read
	drawn     *templates.MonitorControlsView
	lastSent  time.Time // when the customer's last message was stored: its typing ended then
	typingEnd bool      // the typing line must be cleared
}

func (s *Surface) handleMonitorSocket(c echo.Context) error {
	r := c.Request()
	if origin := r.Header.Get("Origin"); origin != "" {
		// Only our own pages may open a monitor: a foreign page could otherwise ride the cookie.
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return agentd.Errorf(agentd.EFORBIDDEN, "origin_not_allowed", "The monitor can only be opened from this site.")
		}
	}
	in, err := s.monitorID(c)
	if err != nil {
		return err
	}
	u := web.CurrentUser(c)
	token, _ := c.Get("session_token").(string)
	cc := &monConn{s: s, iid: in.ID, userID: u.ID, csrf: web.CSRF(c), token: token, nextSeq: 1}
	opts := web.ConnOptions{Surface: "supervisor", ReadLimit: monitorReadLimit, TickEvery: monitorTick, Held: true,
		FramesPerSecond: monitorFramesPerSecond, FrameBurst: monitorFrameBurst}
	err = s.mon.Sockets.Serve(c, opts, func(wc *web.Conn) (web.Handler, web.Subscriber, *web.CloseReason) {
		cc.Conn = wc
		cc.Resync() // the first flush, after the hello, renders everything
		return cc, cc, nil
	})
	if m := cc.monitor.Load(); m != nil {
		// The page went away: the agent's "Monitored by" line goes with it, on every node.
		ctx, cancel := context.WithTimeout(context.Background(), monitorCommandTimeout)
		if err := s.mon.Supervision.StopMonitor(ctx, *m); err != nil {
			s.mon.Logger.Warn("stop monitoring", "interaction_id", in.ID, "err", err)
		}
		cancel()
	}
	return err
}

// Notify turns a notification into marks; it never blocks (the hub calls it).
func (c *monConn) Notify(n chat.Notification) {
	switch n.Kind {
	case chat.NotifyEvents, chat.NotifySide:
		c.Mark(web.Mark{Kind: n.Kind, Key: n.InteractionID})
	case chat.NotifyTyping:
		if n.Typing != nil && n.Typing.Party.Type == chat.PartyClient {
			c.SetTyping(n.InteractionID, *n.Typing)
		}
	}
}

// user re-reads the supervisor: a role taken away or an account disabled counts at once.
func (c *monConn) user(ctx context.Context) (agent.User, error) {
	u, err := c.s.mon.Accounts.User(ctx, c.userID)
	if err != nil {
		return agent.User{}, err
	}
	return u, agent.CanSupervise(u)
}

// Tick renews the monitoring session and closes the socket once its user may no longer
// supervise or its browser session ended (write pump).
func (c *monConn) Tick(ctx context.Context) {
	m := c.monitor.Load()
	if m == nil {
		return
	}
	if err := c.s.mon.Accounts.SessionAlive(ctx, c.token); agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
		c.Close(web.CloseSessionEnded)
		return
	}
	u, err := c.user(ctx)
	if agentd.ErrorClass(err) == agentd.EFORBIDDEN {
		c.Close(web.CloseAccountDisabled)
		return
	}
	err = c.s.mon.Supervision.RenewMonitor(ctx, *m)
	if agentd.ErrorClass(err) == agentd.ENOTFOUND && u.ID != 0 {
		// The session expired (the node stalled past the TTL) and was swept: the page is still
		// open, so it monitors again, as a new session.
		var fresh agent.Monitor
		if fresh, err = c.s.mon.Supervision.StartMonitor(ctx, u, newMonitorID(), c.iid); err == nil {
			c.monitor.Store(&fresh)
		}
	}
	if err != nil && ctx.Err() == nil {
		c.Logger().Warn("renew monitoring", "err", err)
	}
}

// HandleFrame runs one command from the page (read pump). The first frame must be the hello
// with the session's CSRF token; it starts the monitoring session.
func (c *monConn) HandleFrame(ctx context.Context, _ int, frame []byte) {
	in, ok := c.ReadCommand(frame)
	if !ok {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, monitorCommandTimeout)
	defer cancel()
	if !c.hello.Load() {
		if !c.CheckHello(in, c.csrf) {
			return
		}
		u, err := c.user(cctx)
		if err == nil {
			var m agent.Monitor
			if m, err = c.s.mon.Supervision.StartMonitor(cctx, u, newMonitorID(), c.iid); err == nil {
				c.monitor.Store(&m)
			}
		}
		if err != nil {
			web.LogCommandError(ctx, c.Logger(), in.Cmd, err)
			c.Send(web.Failed(in.ID, agentd.ErrorCode(err), agentd.ErrorMessage(err)))
			c.CloseAfterSend(web.CloseNormal)
			<-c.Done()
			return
		}
		c.hello.Store(true)
		// Registered with the hub by now (Serve registers before the pumps run): from here on
		// every notification of the chat marks this connection, and the first flush reads
		// everything before it from Postgres.
		c.s.mon.Sockets.Hub().Attach(c, c.iid)
		c.Send(web.Result(in.ID, nil))
		c.Release()
		return
	}
	start := time.Now()
	data, err := c.run(cctx, in.ID, in.Cmd, in.Args)
	code := "ok"
	if err != nil {
		code = agentd.ErrorCode(err)
	}
	c.s.mon.Metrics.Command("supervisor", monitorCommandLabel(in.Cmd), code, time.Since(start))
	if err != nil {
		web.LogCommandError(ctx, c.Logger(), in.Cmd, err)
		c.Send(web.Failed(in.ID, agentd.ErrorCode(err), agentd.ErrorMessage(err)))
		return
	}
	c.Send(web.Result(in.ID, data))
}

// run checks the user's role again (it may have changed since the page opened) and runs cmd.
func (c *monConn) run(ctx context.Context, id, cmd string, raw json.RawMessage) (any, error) {
	u, err := c.user(ctx)
	if err != nil {
		return nil, err
	}
	var args struct {
		Text string `json:"text"`
	}
	if len(raw) > 0 && json.Unmarshal(raw, &args) != nil {
		return nil, agentd.Errorf(agentd.EINVALID, "invalid_argument", "The command's args are not valid.")
	}
	sup := c.s.mon.Supervision
	switch cmd {
	case "whisper":
		n, err := sup.Whisper(ctx, u, c.iid, args.Text)
		if err != nil {
			return nil, err
		}
		return map[string]any{"seq": n.Seq}, nil
	case "barge_in":
		p, err := sup.BargeIn(ctx, u, c.iid)
		if err != nil {
			return nil, err
		}
		return map[string]any{"party_id": p.ID}, nil
	case "send":
		ev, err := sup.Send(ctx, u, c.iid, id, args.Text)
		if err != nil {
			return nil, err
		}
		return map[string]any{"index": ev.Index}, nil
	case "leave":
		return nil, sup.Leave(ctx, u, c.iid)
	}
	return nil, agentd.Errorf(agentd.EINVALID, "unknown_command", "Unknown command %q.", monitorCommandLabel(cmd))
}

// monitorCommandLabel keeps the metric label set bounded to the known commands.
func monitorCommandLabel(cmd string) string {
	switch cmd {
	case "whisper", "barge_in", "send", "leave":
		return cmd
	}
	return "unknown"
}

type monOp struct {
	Op   string `json:"op"` // replace (outerHTML), html (innerHTML), append
	ID   string `json:"id"`
	HTML string `json:"html,omitempty"`
}

// Flush renders what changed as one ops frame (write pump): new transcript events and whispers
// by index and seq from Postgres, the UserData table when it changed, the customer's typing and
// the supervisor's controls. What was rendered before a failed read is still sent; the core
// gives the marks back and the next flush reads the rest.
func (c *monConn) Flush(ctx context.Context, d web.Dirty) error {
	var ops []monOp
	add := func(kind, id string, comp templ.Component) error {
		html, err := web.Fragment(ctx, comp)
		if err == nil {
			ops = append(ops, monOp{Op: kind, ID: id, HTML: html})
		}
		return err
	}
	err := c.render(ctx, &d, add)
	if len(ops) > 0 {
		if werr := c.Write(map[string]any{"type": "ops", "ops": ops}); werr != nil {
			return werr
		}
	}
	return err
}

func (c *monConn) render(ctx context.Context, d *web.Dirty, add func(kind, id string, comp templ.Component) error) error {
	s, iid, me := c.s.mon, c.iid, fmt.Sprint(c.userID)
	for more := d.Has(chat.NotifyEvents, iid); more; {
		evs, err := s.Chat.Transcript(ctx, iid, c.nextIndex, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := add("append", "mon-transcript", templates.TranscriptItem(eventView(ev))); err != nil {
				return err
			}
			c.nextIndex = ev.Index + 1
			if p := ev.Party; p != nil && p.Type == chat.PartySupervisor && p.UserRef == me {
				switch ev.Kind {
				case chat.EventPartyJoined:
					c.in = true
				case chat.EventPartyLeft:
					c.in = false
				}
			}
			if ev.Kind == chat.EventMessage && ev.Party != nil && ev.Party.Type == chat.PartyClient {
				c.lastSent, c.typingEnd = ev.At, true
			}
			if ev.Kind == chat.EventSessionEnded {
				c.ended, c.typingEnd = true, true
			}
		}
		more = len(evs) == chat.MaxTranscriptPage
	}
	udChanged := d.Resync
	for more := d.Has(chat.NotifySide, iid); more; {
		items, err := s.Chat.SideItems(ctx, iid, c.nextSeq, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		for _, it := range items {
			c.nextSeq = it.Seq + 1
			if it.Change != nil {
				udChanged = true
			} else if w, ok := it.Notice.Whisper(); ok {
				v := templates.WhisperView{Seq: it.Seq, From: nameOr(w.From), Text: w.Text, Time: it.Notice.At.Format("15:04:05"),
					AtMs: it.Notice.At.UnixMilli()}
				if err := add("append", "mon-transcript", templates.WhisperItem(v)); err != nil {
					return err
				}
			}
		}
		more = len(items) == chat.MaxTranscriptPage
	}
	if udChanged {
		entries, err := s.Chat.UserData(ctx, iid)
		if err != nil {
			return err
		}
		v := templates.UserDataView{InteractionID: iid}
		for _, e := range entries {
			if strings.HasPrefix(e.Key, userdata.ReservedPrefix) {
				continue
			}
			v.Rows = append(v.Rows, templates.UserDataRow{Key: e.Key, Value: displayValue(e.Value), Owner: string(e.Owner),
				Visible: e.CustomerCanRead()})
		}
		if err := add("replace", "ud-"+iid, templates.UserDataTable(v)); err != nil {
			return err
		}
	}
	if ctl := (templates.MonitorControlsView{In: c.in && !c.ended, Ended: c.ended}); c.drawn == nil || *c.drawn != ctl {
		if err := add("html", "mon-controls", templates.MonitorControls(ctl)); err != nil {
			return err
		}
		c.drawn = &ctl
	}
	t, typed := d.Typing()[iid]
	if typed || c.typingEnd {
		name := ""
		// Typing that the customer's message (or the end) overtook is over.
		if typed && t.IsTyping && !c.ended && t.At.After(c.lastSent) {
			name = nameOr(t.Party.Name)
		}
		if err := add("html", "mon-typing", templates.TypingLine(name, t.Text)); err != nil {
			return err
		}
		c.typingEnd = false
	}
	return nil
}

func eventView(ev chat.Event) templates.EventView {
	v := templates.EventView{Index: ev.Index, Kind: string(ev.Kind), Text: ev.Text, ContentType: ev.ContentType,
		Reason: string(ev.Reason), Time: ev.At.Format("15:04:05"), AtMs: ev.At.UnixMilli()}
	if ev.Party != nil {
		v.PartyType, v.PartyName = string(ev.Party.Type), nameOr(ev.Party.Name)
	}
	return v
}
