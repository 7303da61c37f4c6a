// Package supervisor is the supervisors' surface, /supervisor (docs/supervisor.md): the live
// dashboard (dashboard.go, charts.go), the most recent interactions and the review of one
// interaction — its transcript, UserData and UserData history, notices, co-browse sessions,
// survey, wrap-up and audit rows. Supervisors and admins only; opening a review is audited
// (supervisor.view).
package supervisor

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/templates"
)

// Chat is what the review reads of an interaction from the chat core (chat.Service).
type Chat interface {
	Interaction(ctx context.Context, interactionID string) (chat.Interaction, error)
	WholeTranscript(ctx context.Context, interactionID string) ([]chat.Event, error)
	UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error)
	UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]chat.SideItem, error)
}

// History is what the review reads of the agents' side of an interaction (agent.History).
type History interface {
	WrapInfo(ctx context.Context, interactionID string) (disposition, notes string, err error)
	SurveyAnswers(ctx context.Context, interactionID string) (map[string]string, bool, error)
	Strategy(ctx context.Context, serviceID int64) (agent.Strategy, error)
}

// Interactions lists interactions, newest first (postgres.APIStore).
type Interactions interface {
	Interactions(ctx context.Context, f notify.InteractionFilter) ([]notify.InteractionSummary, error)
}

// Audit reads an interaction's audit rows and records a supervisor's view (postgres.SupervisorStore).
type Audit interface {
	InteractionAudit(ctx context.Context, interactionID string) ([]agent.AuditEntry, error)
	AuditView(ctx context.Context, userID int64, interactionID string) error
}

// Deps is what the supervisor surface is built from.
type Deps struct {
	Chat         Chat
	History      History
	Interactions Interactions
	Audit        Audit
	Search       Search // search.go
	Auth         *web.Auth
	// The live dashboard (dashboard.go): its figures, the session check of its socket, the
	// node's sockets, and the clock (time.Now when nil).
	Dashboard Dashboard
	Sessions  Sessions
	Sockets   *web.Sockets
	Now       func() time.Time
	DashCfg   DashboardConfig
	// Monitor is the live monitor's (monitor.go); without its Sockets there is no monitor.
	Monitor MonitorDeps
}

// Surface serves /supervisor.
type Surface struct {
	chat         Chat
	history      History
	interactions Interactions
	audit        Audit
	search       Search
	auth         *web.Auth
	dashboard    Dashboard
	sessions     Sessions
	sockets      *web.Sockets
	clock        func() time.Time
	dashCfg      DashboardConfig
	mon          MonitorDeps
}

// New returns the supervisor surface.
func New(d Deps) *Surface {
	return &Surface{chat: d.Chat, history: d.History, interactions: d.Interactions, audit: d.Audit, search: d.Search, auth: d.Auth,
		dashboard: d.Dashboard, sessions: d.Sessions, sockets: d.Sockets, clock: d.Now, dashCfg: d.DashCfg.withDefaults(),
		mon: d.Monitor}
}

// recentLimit is how many interactions /supervisor lists.
const recentLimit = 50

// Register adds the supervisor routes, for supervisors and admins.
func (s *Surface) Register(e *echo.Echo) {
	g := e.Group("/supervisor", web.BodyLimit(web.FormLimit), s.auth.Require(agent.RoleSupervisor))
	g.GET("", s.handleHome)
	g.GET("/interactions/:id", s.handleInteraction)
	g.GET("/socket", s.handleDashSocket)
	s.registerSearch(g)
	s.registerMonitor(g)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func errNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "interaction_not_found", "No interaction with this id.")
}

// notFound turns the chat core's "no such session" into "no such interaction".
func notFound(err error) error {
	if agentd.ErrorClass(err) == agentd.ENOTFOUND {
		return errNotFound()
	}
	return err
}

const timeLayout = "2006-01-02 15:04:05"

func (s *Surface) handleHome(c echo.Context) error {
	// The "Open" form sends ?id=: a valid id goes to its review; anything else is answered with
	// the same "no interaction with this id" as an unknown one.
	if id, ok := c.QueryParams()["id"]; ok {
		v := strings.TrimSpace(strings.Join(id, ""))
		if !uuidRE.MatchString(v) {
			return agentd.Errorf(agentd.EINVALID, "invalid_id", "An interaction id is a UUID, such as 0b7c2f4e-1d2a-4c3b-9e8f-123456789abc.")
		}
		return c.Redirect(http.StatusSeeOther, "/supervisor/interactions/"+strings.ToLower(v))
	}
	dash, err := s.dashboardView(c.Request().Context())
	if err != nil {
		return err
	}
	ins, err := s.interactions.Interactions(c.Request().Context(), notify.InteractionFilter{Limit: recentLimit})
	if err != nil {
		return err
	}
	rows := make([]templates.SupervisorRow, len(ins))
	for i, in := range ins {
		r := templates.SupervisorRow{ID: in.ID, Customer: nameOr(in.CustomerName), Service: in.Service, State: in.State,
			Agents: strings.Join(in.Agents, ", "), Started: in.CreatedAt.Format(timeLayout)}
		if in.EndedAt != nil {
			r.Ended = in.EndedAt.Format(timeLayout)
		}
		rows[i] = r
	}
	return web.Render(c, http.StatusOK, templates.SupervisorHome(web.Viewer(c), dash, rows))
}

func nameOr(s string) string {
	if s == "" {
		return "Customer"
	}
	return s
}

func displayValue(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (s *Surface) handleInteraction(c echo.Context) error {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return errNotFound()
	}
	id = strings.ToLower(id)
	ctx := c.Request().Context()
	in, err := s.chat.Interaction(ctx, id)
	if err != nil {
		return notFound(err)
	}
	v := templates.SupervisorReview{ID: id, Customer: nameOr(in.CustomerName), Service: in.ServiceName, State: string(in.State),
		Started: in.CreatedAt.Format(timeLayout)}
	if in.EndedAt != nil {
		v.Ended = in.EndedAt.Format(timeLayout)
	}
	evs, err := s.chat.WholeTranscript(ctx, id)
	if err != nil {
		return notFound(err)
	}
	at := make([]time.Time, 0, len(evs)) // when each row of v.Transcript happened, for the whispers
	for _, ev := range evs {
		e := templates.SupervisorEvent{Time: ev.At.Format(timeLayout), Kind: string(ev.Kind), Text: ev.Text, Reason: string(ev.Reason)}
		if ev.Party != nil {
			e.Party, e.PartyType = nameOr(ev.Party.Name), string(ev.Party.Type)
			if ev.Kind == chat.EventPartyJoined && (ev.Party.Type == chat.PartyAgent || ev.Party.Type == chat.PartySupervisor) &&
				!slices.Contains(v.Agents, e.Party) {
				v.Agents = append(v.Agents, e.Party)
			}
		}
		v.Transcript = append(v.Transcript, e)
		at = append(at, ev.At)
	}
	entries, err := s.chat.UserData(ctx, id)
	if err != nil {
		return notFound(err)
	}
	for _, e := range entries {
		vis := "hidden from the customer"
		if e.CustomerCanRead() {
			vis = "visible to the customer"
		}
		v.UserData = append(v.UserData, templates.SupervisorEntry{Key: e.Key, Value: displayValue(e.Value), Owner: string(e.Owner),
			Visibility: vis, Updated: e.UpdatedAt.Format(timeLayout)})
	}
	changes, err := s.chat.UserDataHistory(ctx, id)
	if err != nil {
		return notFound(err)
	}
	for _, h := range changes {
		by := string(h.Owner)
		if h.ActorName != "" {
			by += " (" + h.ActorName + ")"
		}
		v.Changes = append(v.Changes, templates.SupervisorChange{Time: h.At.Format(timeLayout), Key: h.Key, Op: string(h.Op),
			Old: displayValue(h.OldValue), New: displayValue(h.NewValue), By: by})
		if strings.HasPrefix(h.Key, "CoBrowse") && h.NewValue != nil {
			v.CoBrowse = append(v.CoBrowse, templates.SupervisorCoBrowse{Time: h.At.Format(timeLayout),
				What: h.Key + " set to " + displayValue(h.NewValue), By: by})
		}
	}
	const sidePage = 500
	for from := int64(1); ; {
		items, err := s.chat.SideItems(ctx, id, from, sidePage)
		if err != nil {
			return notFound(err)
		}
		for _, it := range items {
			if w, ok := whisperOf(it); ok {
				// A whisper is part of the conversation the supervisor reviews: in the
				// transcript, in its place by time, marked (kind "whisper").
				i, _ := slices.BinarySearchFunc(at, it.Notice.At, func(a, t time.Time) int {
					if a.After(t) {
						return 1
					}
					return -1
				})
				e := templates.SupervisorEvent{Time: it.Notice.At.Format(timeLayout), Kind: "whisper", Party: nameOr(w.From),
					PartyType: "supervisor", Text: w.Text}
				v.Transcript, at = slices.Insert(v.Transcript, i, e), slices.Insert(at, i, it.Notice.At)
			} else if n := it.Notice; n != nil {
				from := n.Sender
				if n.Party.ID != "" {
					from = nameOr(n.Party.Name) + " (" + string(n.Party.Type) + ")"
				}
				v.Notices = append(v.Notices, templates.SupervisorNotice{Time: n.At.Format(timeLayout), From: from,
					Audience: string(n.Audience), Payload: string(n.Payload)})
			}
		}
		if len(items) < sidePage {
			break
		}
		from = items[len(items)-1].Seq + 1
	}
	answers, ok, err := s.history.SurveyAnswers(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		st, err := s.history.Strategy(ctx, in.ServiceID)
		if err != nil {
			return err
		}
		for _, q := range st.Questions() {
			if a, ok := answers[q.ID]; ok {
				v.Survey = append(v.Survey, templates.SurveyAnswer{Question: q.Label, Answer: a})
			}
		}
	}
	if v.Disposition, v.Notes, err = s.history.WrapInfo(ctx, id); err != nil {
		return notFound(err)
	}
	// The view is audited before the audit rows are read, so the page shows its own row.
	if err := s.audit.AuditView(ctx, web.CurrentUser(c).ID, id); err != nil {
		return err
	}
	rows, err := s.audit.InteractionAudit(ctx, id)
	if err != nil {
		return err
	}
	for _, a := range rows {
		who := a.Username
		if who == "" {
			who = "agentd"
		}
		switch {
		case a.Action == "chat.wrap_up":
			v.WrapAgent = who
		case strings.HasPrefix(a.Action, "cobrowse."):
			v.CoBrowse = append(v.CoBrowse, templates.SupervisorCoBrowse{Time: a.At.Format(timeLayout), What: a.Action, By: who})
		}
		v.Audit = append(v.Audit, templates.SupervisorAudit{Time: a.At.Format(timeLayout), Who: who, Action: a.Action, Details: string(a.Details)})
	}
	slices.SortStableFunc(v.CoBrowse, func(a, b templates.SupervisorCoBrowse) int { return strings.Compare(a.Time, b.Time) })
	return web.Render(c, http.StatusOK, templates.SupervisorInteraction(web.Viewer(c), v))
}

// whisperOf returns the whisper a side item is, if it is one.
func whisperOf(it chat.SideItem) (chat.Whisper, bool) {
	if it.Notice == nil {
		return chat.Whisper{}, false
	}
	return it.Notice.Whisper()
}
