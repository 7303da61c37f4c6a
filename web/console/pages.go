package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
	"agentd/web/templates"
)

func (s *Surface) handleConsole(c echo.Context) error {
	ctx := c.Request().Context()
	u := web.CurrentUser(c)
	data, err := s.consoleData(ctx, u)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, templates.Console(web.Viewer(c), data))
}

// consoleData builds the whole console: the page load and every full refresh use it.
func (s *Surface) consoleData(ctx context.Context, u agent.User) (templates.ConsoleData, error) {
	var d templates.ConsoleData
	d.Presence = presenceView(u)
	qs, err := s.queueView(ctx, u)
	if err != nil {
		return d, err
	}
	d.Queues = qs
	as, err := s.desk.Assignments(ctx, u)
	if err != nil {
		return d, err
	}
	d.Offers, d.Chats = s.listViews(ctx, as)
	for _, a := range as {
		if a.State != agent.AssignActive {
			continue
		}
		p, err := s.panelView(ctx, u, a)
		if err != nil {
			return d, err
		}
		d.Panels = append(d.Panels, p)
	}
	if d.Recent, err = s.recentView(ctx, u); err != nil {
		return d, err
	}
	return d, nil
}

// recentView is the list of chats the agent finished (the page load, and each wrap-up).
func (s *Surface) recentView(ctx context.Context, u agent.User) ([]templates.RecentItem, error) {
	recent, err := s.history.RecentChats(ctx, u)
	if err != nil {
		return nil, err
	}
	var items []templates.RecentItem
	for _, r := range recent {
		items = append(items, templates.RecentItem{InteractionID: r.InteractionID, Customer: nameOr(r.Customer),
			Ended: r.EndedAt.Format("Jan 2 15:04"), Disposition: r.Disposition, CSAT: r.CSAT})
	}
	return items, nil
}

func nameOr(s string) string {
	if s == "" {
		return "Customer"
	}
	return s
}

func presenceView(u agent.User) templates.PresenceView {
	return templates.PresenceView{State: string(u.State), Reason: u.NotReadyReason, Reasons: agent.NotReadyReasons}
}

func (s *Surface) queueView(ctx context.Context, u agent.User) ([]templates.QueueCount, error) {
	counts, err := s.desk.QueueCounts(ctx, u)
	if err != nil {
		return nil, err
	}
	var qs []templates.QueueCount
	for _, name := range u.Services {
		qs = append(qs, templates.QueueCount{Service: name, Waiting: counts[name]})
	}
	return qs, nil
}

// listViews builds the offers list and the chats list. The pending-response indicator starts at
// the oldest customer message no agent answered yet (kept on the interaction by every message).
func (s *Surface) listViews(ctx context.Context, as []agent.Assignment) ([]templates.OfferView, []templates.ChatItem) {
	var offers []templates.OfferView
	var chats []templates.ChatItem
	strategies := map[int64]agent.Strategy{} // one read per service, not per chat
	for _, a := range as {
		in := a.Interaction
		if a.State == agent.AssignOffered {
			var exp int64
			if a.ExpiresAt != nil {
				exp = a.ExpiresAt.UnixMilli()
			}
			offers = append(offers, templates.OfferView{InteractionID: in.ID, Customer: nameOr(in.CustomerName), Service: in.ServiceName, Subject: in.Subject, ExpiresAtMs: exp})
			continue
		}
		st, ok := strategies[in.ServiceID]
		if !ok {
			st, _ = s.desk.Strategy(ctx, in.ServiceID)
			strategies[in.ServiceID] = st
		}
		item := templates.ChatItem{InteractionID: in.ID, Customer: nameOr(in.CustomerName), Service: in.ServiceName, Ended: in.State.Over(),
			WarnSeconds: secondsOr(st.PendingWarnSeconds, agent.DefaultPendingWarn), LateSeconds: secondsOr(st.PendingLateSeconds, agent.DefaultPendingLate)}
		if !item.Ended && in.PendingSince != nil {
			item.PendingSinceMs = in.PendingSince.UnixMilli()
		}
		chats = append(chats, item)
	}
	return offers, chats
}

func secondsOr(v int, d time.Duration) int {
	if v > 0 {
		return v
	}
	return int(d / time.Second)
}

func (s *Surface) panelView(ctx context.Context, u agent.User, a agent.Assignment) (templates.ChatPanelView, error) {
	in := a.Interaction
	p := templates.ChatPanelView{InteractionID: in.ID, Customer: nameOr(in.CustomerName), Service: in.ServiceName, Subject: in.Subject,
		Ended: in.State.Over()}
	var err error
	if p.Actions, err = s.actionsView(ctx, u, in); err != nil {
		return p, err
	}
	entries, err := s.chat.UserData(ctx, in.ID)
	if err != nil {
		return p, err
	}
	p.UserData = consoleUserData(in.ID, entries, p.Ended)
	p.CoBrowse = s.coBrowseView(u, in.ID, entries, p.Ended)
	return p, nil
}

func (s *Surface) actionsView(ctx context.Context, u agent.User, in chat.Interaction) (templates.ActionsView, error) {
	v := templates.ActionsView{InteractionID: in.ID, Ended: in.State.Over()}
	st, err := s.desk.Strategy(ctx, in.ServiceID)
	if err != nil {
		return v, err
	}
	v.Dispositions, v.DispositionRequired = st.Dispositions, st.DispositionRequired
	if v.Ended {
		return v, nil
	}
	svcs, err := s.desk.Services(ctx)
	if err != nil {
		return v, err
	}
	for _, sv := range svcs {
		if sv.Enabled {
			v.Services = append(v.Services, sv.Name)
		}
	}
	agents, err := s.desk.TransferAgents(ctx, u, in.ServiceName)
	if err != nil {
		return v, err
	}
	for _, o := range agents {
		v.Agents = append(v.Agents, templates.AgentOption{ID: o.ID, Name: o.DisplayName})
	}
	return v, nil
}

func displayValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// userDataRows are the rows of a chat's UserData table, every key, none editable.
func userDataRows(entries []userdata.Entry) []templates.UserDataRow {
	var rows []templates.UserDataRow
	for _, e := range entries {
		rows = append(rows, templates.UserDataRow{Key: e.Key, Value: displayValue(e.Value), Owner: string(e.Owner),
			Visible: e.CustomerCanRead()})
	}
	return rows
}

// consoleUserData is the UserData table of a chat panel. agentd's own keys (ReservedPrefix, such as
// the co-browse session last joined) are bookkeeping, not information for the agent: they are left
// out here and shown in the history page. Keys that are not system-owned are editable while the
// chat is live.
func consoleUserData(interactionID string, entries []userdata.Entry, ended bool) templates.UserDataView {
	v := templates.UserDataView{InteractionID: interactionID}
	for _, r := range userDataRows(entries) {
		if strings.HasPrefix(r.Key, userdata.ReservedPrefix) {
			continue
		}
		r.Editable = !ended && r.Owner != string(userdata.OwnerSystem)
		v.Rows = append(v.Rows, r)
	}
	return v
}

func (s *Surface) coBrowseView(u agent.User, interactionID string, entries []userdata.Entry, ended bool) templates.CoBrowseView {
	v := templates.CoBrowseView{InteractionID: interactionID, Ended: ended}
	for _, e := range entries {
		if e.Key == userdata.KeyCoBrowseSessionID {
			v.SessionID = displayValue(e.Value)
		}
	}
	if v.SessionID != "" {
		v.Open = true
		v.URL = s.desk.CoBrowseURL(u, v.SessionID, interactionID)
	}
	return v
}

func eventView(ev chat.Event) templates.EventView {
	v := templates.EventView{Index: ev.Index, Kind: string(ev.Kind), Text: ev.Text, ContentType: ev.ContentType,
		Reason: reasonLabel(ev.Reason), Time: ev.At.Format("15:04:05"), AtMs: ev.At.UnixMilli()}
	if ev.Party != nil {
		v.PartyType, v.PartyName = string(ev.Party.Type), nameOr(ev.Party.Name)
	}
	return v
}

func reasonLabel(r chat.EndReason) string {
	switch r {
	case chat.EndLeaveRequest:
		return "customer left"
	case chat.EndAgent:
		return "ended by agent"
	case chat.EndTimeout:
		return "timed out"
	case chat.EndError:
		return "error"
	}
	return string(r)
}

// stateText says in words where a chat is, and how it ended.
func stateText(in chat.Interaction) string {
	switch in.State {
	case chat.StateQueued:
		return "Waiting in the queue"
	case chat.StateOffered:
		return "Offered to an agent"
	case chat.StateActive:
		return "In progress"
	case chat.StateAbandoned:
		return "Abandoned: the customer left before an agent answered"
	case chat.StateEnded:
		return "Ended (" + reasonLabel(in.EndReason) + "), waiting for wrap-up"
	case chat.StateWrapped:
		if in.EndReason != "" {
			return "Wrapped up (" + reasonLabel(in.EndReason) + ")"
		}
		return "Wrapped up"
	}
	return string(in.State)
}

// durationText is how long the chat lasted, from its start to its end.
func durationText(in chat.Interaction) string {
	if in.EndedAt == nil {
		return "ongoing"
	}
	d := in.EndedAt.Sub(in.CreatedAt).Round(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min " + strconv.Itoa(int(d%time.Minute/time.Second)) + " s"
	}
	return strconv.Itoa(int(d/time.Hour)) + " h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + " min"
}

func (s *Surface) handleHistory(c echo.Context) error {
	ctx := c.Request().Context()
	u := web.CurrentUser(c)
	id := c.Param("id")
	if err := s.history.CanRead(ctx, u, id); err != nil {
		return err
	}
	in, err := s.chat.Interaction(ctx, id)
	if err != nil {
		return err
	}
	h := templates.HistoryView{InteractionID: id, Customer: nameOr(in.CustomerName), Service: in.ServiceName,
		State: stateText(in), Date: in.CreatedAt.Format("Mon Jan 2, 2006 15:04"), Duration: durationText(in)}
	if h.Disposition, h.Notes, err = s.history.WrapInfo(ctx, id); err != nil {
		return err
	}
	evs, err := s.chat.WholeTranscript(ctx, id)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		h.Events = append(h.Events, eventView(ev))
		if ev.Kind == chat.EventPartyJoined && ev.Party != nil && (ev.Party.Type == chat.PartyAgent || ev.Party.Type == chat.PartySupervisor) &&
			!slices.Contains(h.Agents, nameOr(ev.Party.Name)) {
			h.Agents = append(h.Agents, nameOr(ev.Party.Name))
		}
	}
	entries, err := s.chat.UserData(ctx, id)
	if err != nil {
		return err
	}
	h.UserData = userDataRows(entries)
	changes, err := s.chat.UserDataHistory(ctx, id)
	if err != nil {
		return err
	}
	for _, ch := range changes {
		h.Changes = append(h.Changes, templates.ChangeRow{Time: ch.At.Format("Jan 2 15:04:05"), Key: ch.Key, Op: string(ch.Op),
			Old: displayValue(ch.OldValue), New: displayValue(ch.NewValue), Owner: string(ch.Owner), Actor: ch.ActorName})
	}
	answers, ok, err := s.history.SurveyAnswers(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		st, _ := s.history.Strategy(ctx, in.ServiceID)
		for _, q := range st.Questions() {
			if a, ok := answers[q.ID]; ok {
				h.Survey = append(h.Survey, templates.SurveyAnswer{Question: q.Label, Answer: a})
			}
		}
	}
	return web.Render(c, http.StatusOK, templates.History(web.Viewer(c), h))
}
