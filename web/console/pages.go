package console

import (
	"context"
	"encoding/json"
	"net/http"
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
	recent, err := s.history.RecentChats(ctx, u)
	if err != nil {
		return d, err
	}
	for _, r := range recent {
		d.Recent = append(d.Recent, templates.RecentItem{InteractionID: r.InteractionID, Customer: nameOr(r.Customer),
			Ended: r.EndedAt.Format("Jan 2 15:04"), Disposition: r.Disposition, CSAT: r.CSAT})
	}
	return d, nil
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
	p := templates.ChatPanelView{InteractionID: in.ID, Customer: nameOr(in.CustomerName), Service: in.ServiceName, Subject: in.Subject}
	var err error
	if p.Actions, err = s.actionsView(ctx, u, in); err != nil {
		return p, err
	}
	entries, err := s.chat.UserData(ctx, in.ID)
	if err != nil {
		return p, err
	}
	p.UserData = userDataView(in.ID, entries)
	p.CoBrowse = s.coBrowseView(in.ID, entries)
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

func userDataView(interactionID string, entries []userdata.Entry) templates.UserDataView {
	v := templates.UserDataView{InteractionID: interactionID}
	for _, e := range entries {
		v.Rows = append(v.Rows, templates.UserDataRow{Key: e.Key, Value: displayValue(e.Value), Owner: string(e.Owner),
			Visible: e.CustomerCanRead(), Editable: e.Owner != userdata.OwnerSystem})
	}
	return v
}

func (s *Surface) coBrowseView(interactionID string, entries []userdata.Entry) templates.CoBrowseView {
	v := templates.CoBrowseView{InteractionID: interactionID}
	for _, e := range entries {
		if e.Key == userdata.KeyCoBrowseSessionID {
			v.SessionID = displayValue(e.Value)
		}
	}
	if v.SessionID != "" {
		v.Open = true
		v.URL = s.desk.CoBrowseURL(v.SessionID, interactionID)
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
	h := templates.HistoryView{InteractionID: id, Customer: nameOr(in.CustomerName), Service: in.ServiceName, State: string(in.State)}
	if h.Disposition, h.Notes, err = s.history.WrapInfo(ctx, id); err != nil {
		return err
	}
	for from := 0; ; {
		evs, err := s.chat.Transcript(ctx, id, from, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			h.Events = append(h.Events, eventView(ev))
			from = ev.Index + 1
		}
		if len(evs) < chat.MaxTranscriptPage {
			break
		}
	}
	entries, err := s.chat.UserData(ctx, id)
	if err != nil {
		return err
	}
	h.UserData = userDataView(id, entries).Rows
	for i := range h.UserData {
		h.UserData[i].Editable = false
	}
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
