package supervisor

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/web"
	"agentd/web/templates"
)

// The live dashboard on /supervisor (docs/supervisor.md, "Live dashboard"): the page renders it
// once, and /supervisor/socket keeps it up to date. The socket runs on the web core's Conn and
// watches every notification of the node (Hub.WatchAll), which covers every node's too: queue
// and agent notifications, and each interaction's events, cross nodes through LISTEN/NOTIFY.

// Dashboard reads the dashboard's figures (postgres.DashboardStore).
type Dashboard interface {
	Queues(ctx context.Context, dayStart time.Time) ([]agent.QueueStat, error)
	Agents(ctx context.Context) ([]agent.AgentStat, error)
	LiveChats(ctx context.Context) ([]agent.LiveChat, error)
	Trend(ctx context.Context, from, to time.Time, step time.Duration) ([]agent.Figures, error)
	Dispositions(ctx context.Context, from, to time.Time) ([]agent.DispositionCount, error)
}

// Sessions checks that the browser session a dashboard was opened with still lives, and reads
// its user again (agent.Accounts).
type Sessions interface {
	SessionAlive(ctx context.Context, token string) error
	User(ctx context.Context, id int64) (agent.User, error)
}

// DashboardConfig is the periods of the live dashboard; zero fields take the defaults below.
// Only tests change them.
type DashboardConfig struct {
	// RedrawEvery is the shortest time between two redraws of queues, agents and live chats that
	// notifications cause: a busy system's notifications are coalesced into one redraw a second.
	RedrawEvery time.Duration
	// RefreshEvery is the period of the redraw that happens without a notification (the safety
	// net for one lost, and the pending alarms' times) and of the session check.
	RefreshEvery time.Duration
	// ChartsEvery is the period of the charts' redraw, a whole number of RefreshEvery.
	ChartsEvery time.Duration
}

func (c DashboardConfig) withDefaults() DashboardConfig {
	if c.RedrawEvery <= 0 {
		c.RedrawEvery = time.Second
	}
	if c.RefreshEvery <= 0 {
		c.RefreshEvery = 5 * time.Second
	}
	if c.ChartsEvery < c.RefreshEvery {
		c.ChartsEvery = 12 * c.RefreshEvery
	}
	return c
}

const (
	// pendingAlarm is how long a customer's message may wait for an answer before "Live chats"
	// marks it overdue.
	pendingAlarm = 60 * time.Second
	// dashReadLimit is the largest frame a dashboard may send (it sends only its hello).
	dashReadLimit = 4 << 10
	// dashFramesPerSecond and dashFrameBurst limit what a dashboard page sends.
	dashFramesPerSecond = 5
	dashFrameBurst      = 10
)

// The dashboard's own marks on its connection (web.Mark kinds that no notification has).
const (
	markLive   chat.NotificationKind = "dashboard.live"   // redraw queues, agents and live chats
	markCharts chat.NotificationKind = "dashboard.charts" // redraw the charts
)

func (s *Surface) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// dayStart is the start of the UTC day of t: "today" on the dashboard.
func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func ticker(since, now time.Time, alarmAfter time.Duration) templates.DashTicker {
	t := templates.DashTicker{Since: since.UTC().Format(time.RFC3339Nano), Text: durationText(now.Sub(since))}
	if alarmAfter > 0 {
		t.AlarmAfter = int(alarmAfter / time.Second)
		t.Alarm = now.Sub(since) >= alarmAfter
	}
	return t
}

func stateLabel(a agent.AgentStat) string {
	switch a.State {
	case agent.StateReady:
		return "Ready"
	case agent.StateNotReady:
		if a.NotReadyReason != "" {
			return "Not ready: " + a.NotReadyReason
		}
		return "Not ready"
	}
	return "Offline"
}

// liveView reads "Queues", "Agents" and "Live chats".
func (s *Surface) liveView(ctx context.Context, now time.Time) (templates.Dashboard, error) {
	var v templates.Dashboard
	qs, err := s.dashboard.Queues(ctx, dayStart(now))
	if err != nil {
		return v, err
	}
	for _, q := range qs {
		r := templates.DashQueue{Service: q.DisplayName, Waiting: q.Waiting, Offered: q.Offered, Active: q.Active, Abandoned: q.Abandoned}
		if q.OldestSince != nil {
			t := ticker(*q.OldestSince, now, 0)
			r.Longest = &t
		}
		v.Queues = append(v.Queues, r)
	}
	as, err := s.dashboard.Agents(ctx)
	if err != nil {
		return v, err
	}
	for _, a := range as {
		v.Agents = append(v.Agents, templates.DashAgent{ID: a.ID, Name: a.DisplayName, Username: a.Username, State: stateLabel(a),
			StateKey: string(a.State), Load: a.Load, Capacity: a.Capacity, InState: ticker(a.StateSince, now, 0)})
	}
	ls, err := s.dashboard.LiveChats(ctx)
	if err != nil {
		return v, err
	}
	for _, l := range ls {
		r := templates.DashLive{ID: l.ID, Customer: nameOr(l.Customer), Service: l.Service, Agents: strings.Join(l.Agents, ", "),
			Duration: ticker(l.StartedAt, now, 0)}
		if l.PendingSince != nil {
			t := ticker(*l.PendingSince, now, pendingAlarm)
			r.Pending = &t
		}
		v.Live = append(v.Live, r)
	}
	return v, nil
}

// chartsView reads the charts: the 24 whole hours up to the end of the current one, and the 7
// whole UTC days up to the end of today.
func (s *Surface) chartsView(ctx context.Context, now time.Time) ([]templates.DashWindow, error) {
	hourEnd := now.UTC().Truncate(time.Hour).Add(time.Hour)
	dayEnd := dayStart(now).AddDate(0, 0, 1)
	var ws []templates.DashWindow
	for _, w := range []struct {
		win      window
		from, to time.Time
		step     time.Duration
	}{
		{dayWindow, hourEnd.Add(-24 * time.Hour), hourEnd, time.Hour},
		{weekWindow, dayEnd.AddDate(0, 0, -7), dayEnd, 24 * time.Hour},
	} {
		figs, err := s.dashboard.Trend(ctx, w.from, w.to, w.step)
		if err != nil {
			return nil, err
		}
		disps, err := s.dashboard.Dispositions(ctx, w.from, w.to)
		if err != nil {
			return nil, err
		}
		ws = append(ws, windowView(w.win, figs, disps))
	}
	return ws, nil
}

// dashboardView reads the whole dashboard, for the page.
func (s *Surface) dashboardView(ctx context.Context) (templates.Dashboard, error) {
	now := s.now()
	v, err := s.liveView(ctx, now)
	if err != nil {
		return v, err
	}
	v.Charts, err = s.chartsView(ctx, now)
	return v, err
}

// handleDashSocket opens /supervisor/socket. The route's group has checked the role already
// (agents get 403 before any upgrade); here the Origin is checked as the console does.
func (s *Surface) handleDashSocket(c echo.Context) error {
	r := c.Request()
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return agentd.Errorf(agentd.EFORBIDDEN, "origin_not_allowed", "The dashboard can only be opened from this site.")
		}
	}
	u := web.CurrentUser(c)
	csrf := web.CSRF(c)
	token, _ := c.Get("session_token").(string)
	opts := web.ConnOptions{Surface: "supervisor", ReadLimit: dashReadLimit, TickEvery: s.dashCfg.RefreshEvery, Held: true,
		FramesPerSecond: dashFramesPerSecond, FrameBurst: dashFrameBurst}
	return s.sockets.Serve(c, opts, func(wc *web.Conn) (web.Handler, web.Subscriber, *web.CloseReason) {
		dc := &dashConn{Conn: wc, s: s, userID: u.ID, csrf: csrf, token: token}
		dc.Resync() // the first flush, after the hello, renders everything
		return dc, dc, nil
	})
}

// dashConn is one dashboard socket. Its read pump takes only the hello; its write pump redraws
// the sections as fragments (Flush) and runs the periodic refresh and session check (Tick).
type dashConn struct {
	*web.Conn
	s      *Surface
	userID int64
	csrf   string
	token  string
	hello  atomic.Bool

	// scheduled is true while a redraw caused by notifications is marked or waiting for its
	// turn; last is when the last such redraw started (Unix nanoseconds).
	scheduled atomic.Bool
	last      atomic.Int64
	ticks     int  // write pump only
	watching  bool // write pump only: WatchAll was called
}

// Notify turns the notifications that can change what the dashboard shows (queues, agents,
// transcripts: a new message moves the pending alarm, an end takes a chat off) into one redraw
// at most every RedrawEvery. It never blocks (the hub calls it).
func (c *dashConn) Notify(n chat.Notification) {
	switch n.Kind {
	case chat.NotifyQueue, chat.NotifyAgent, chat.NotifyEvents:
	default:
		return
	}
	if !c.scheduled.CompareAndSwap(false, true) {
		return // a redraw is coming and will read this change too
	}
	wait := time.Until(time.Unix(0, c.last.Load()).Add(c.s.dashCfg.RedrawEvery))
	if wait <= 0 {
		c.Mark(web.Mark{Kind: markLive})
		return
	}
	time.AfterFunc(wait, func() { c.Mark(web.Mark{Kind: markLive}) })
}

// Tick redraws the live sections every RefreshEvery, the charts every ChartsEvery, and
// closes the dashboard when its session ended or its user may no longer see it (write pump).
func (c *dashConn) Tick(ctx context.Context) {
	c.ticks++
	if err := c.s.sessions.SessionAlive(ctx, c.token); err != nil {
		if agentd.ErrorClass(err) == agentd.EUNAUTHORIZED {
			c.Logger().Info("dashboard closed: its session ended")
			c.Close(web.CloseSessionEnded)
			return
		}
		c.Logger().Warn("session check", "err", err)
	} else if u, err := c.s.sessions.User(ctx, c.userID); err == nil && (u.Disabled || !u.Role.AtLeast(agent.RoleSupervisor)) {
		c.Logger().Info("dashboard closed: its user may no longer see it")
		c.Close(web.CloseSessionEnded)
		return
	}
	marks := []web.Mark{{Kind: markLive}}
	if c.ticks%int(c.s.dashCfg.ChartsEvery/c.s.dashCfg.RefreshEvery) == 0 {
		marks = append(marks, web.Mark{Kind: markCharts})
	}
	c.Mark(marks...)
}

// HandleFrame takes the hello that carries the session's CSRF token; the dashboard has no
// commands, so any other frame is answered with an error (read pump).
func (c *dashConn) HandleFrame(_ context.Context, _ int, frame []byte) {
	in, ok := c.ReadCommand(frame)
	if !ok {
		return
	}
	if !c.hello.Load() {
		if !c.CheckHello(in, c.csrf) {
			return
		}
		c.hello.Store(true)
		c.Send(web.Result(in.ID, nil))
		c.Release()
		return
	}
	c.Send(web.Failed(in.ID, "unknown_command", fmt.Sprintf("The dashboard takes no commands; %q is not one.", shorten(in.Cmd, 40))))
}

type dashOp struct {
	Op   string `json:"op"`
	ID   string `json:"id"`
	HTML string `json:"html"`
}

// Flush redraws what d marks: queues, agents and live chats; and the charts after a resync (the
// first flush, or the LISTEN connection back) or on their minute (write pump).
func (c *dashConn) Flush(ctx context.Context, d web.Dirty) error {
	if !c.watching {
		// From the first flush on (after the hello, the connection registered with the hub),
		// every notification of the node reaches Notify; everything is read after this.
		c.s.sockets.Hub().WatchAll(c)
		c.watching = true
	}
	now := c.s.now()
	var ops []dashOp
	if d.Has(markLive, "") {
		c.scheduled.Store(false) // notifications from now on schedule the next redraw
		c.last.Store(time.Now().UnixNano())
		v, err := c.s.liveView(ctx, now)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			id   string
			html func() (string, error)
		}{
			{"dash-queues", func() (string, error) { return web.Fragment(ctx, templates.DashQueues(v.Queues)) }},
			{"dash-agents", func() (string, error) { return web.Fragment(ctx, templates.DashAgents(v.Agents)) }},
			{"dash-live", func() (string, error) { return web.Fragment(ctx, templates.DashLiveChats(v.Live)) }},
		} {
			html, err := f.html()
			if err != nil {
				return err
			}
			ops = append(ops, dashOp{Op: "replace", ID: f.id, HTML: html})
		}
	}
	if d.Has(markCharts, "") {
		ws, err := c.s.chartsView(ctx, now)
		if err != nil {
			return err
		}
		html, err := web.Fragment(ctx, templates.DashCharts(ws))
		if err != nil {
			return err
		}
		ops = append(ops, dashOp{Op: "replace", ID: "dash-charts", HTML: html})
	}
	if len(ops) == 0 {
		return nil
	}
	return c.Write(map[string]any{"type": "ops", "ops": ops})
}
