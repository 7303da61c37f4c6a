package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
	"agentd/postgres"
	"agentd/userdata"
)

// chatEvents reads the integration events of one interaction through the event store, once
// every one written has become readable: the store holds back the events of a transaction until
// every older transaction of the cluster has finished (other tests' included), so a reader that
// resumes from its last position never skips one.
func chatEvents(t *testing.T, m *Main, id string) []notify.Event {
	t.Helper()
	ctx := context.Background()
	var written int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM integration_events WHERE interaction_id = $1`, id).Scan(&written); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := postgres.NewEventStore(m.DB).Events(ctx, notify.Position{}, notify.Filter{InteractionID: id}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == written {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d events written are readable after 10 s", len(evs), written)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventTypes(evs []notify.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Type)
	}
	return out
}

// TestEveryChangeEmitsItsEvent follows one chat from start to survey and checks that each change
// emitted its integration event, in order, with the data an integrator needs.
func TestEveryChangeEmitsItsEvent(t *testing.T) {
	t.Parallel()
	m, u, c, id := oneCommitNode(t, agent.Strategy{Survey: &agent.Survey{When: "ended"}})
	ctx := context.Background()
	mustOK(t, c.do("send_message", map[string]any{"text": "Hello <b>there</b>"}))
	if _, err := m.Agents.Send(ctx, u, id, "console:m1", "Hi, how can I help?"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-42", "Plan": "gold"}}))
	mustOK(t, c.do("delete_userdata", map[string]any{"key": "Plan"}))
	mustOK(t, c.do("send_notice", map[string]any{"payload": map[string]any{"type": "custom", "page": "/cart"}}))
	if err := m.Agents.CoBrowseJoined(ctx, u, id, "CB-42"); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	if err := m.Agents.WrapUp(ctx, u, id, "", "solved"); err != nil {
		t.Fatal(err)
	}
	survey := strings.Trim(strings.Fields(readChat(t, m, id).UserData["SurveyURL"])[0], `"`)
	if err := m.Surveys.SubmitSurvey(ctx, survey[strings.LastIndex(survey, "/")+1:], map[string]string{"CSAT": "5"}); err != nil {
		t.Fatal(err)
	}

	evs := chatEvents(t, m, id)
	types := eventTypes(evs)
	// The order of the kinds that each step emits (UserData events in between are not listed).
	want := []string{"interaction.queued", "interaction.assigned", "message.created", "message.created",
		"cobrowse.requested", "userdata.deleted", "notice.custom",
		"notice.custom", "cobrowse.joined", "interaction.ended", // joining sends the agent_joined notice "interaction.ended",
		"interaction.wrapped_up", "survey.submitted"}
	var got []string
	for _, ty := range types {
		if ty != "userdata.updated" {
			got = append(got, ty)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v\nwant (without userdata.updated) %v", types, want)
	}
	for i := 1; i < len(evs); i++ {
		if !evs[i-1].Position.Less(evs[i].Position) {
			t.Fatalf("positions out of order: %s then %s", evs[i-1].Position, evs[i].Position)
		}
	}
	byType := map[notify.Type][]map[string]any{}
	for _, e := range evs {
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d["interaction_id"] != id || d["service"] != "default" || e.InteractionID != id || e.Service != "default" {
			t.Fatalf("%s does not name its interaction and service: %s", e.Type, e.Data)
		}
		byType[e.Type] = append(byType[e.Type], d)
	}
	if msg := byType[notify.MessageCreated][0]; msg["text"] != "Hello <b>there</b>" || msg["party"].(map[string]any)["type"] != "client" {
		t.Fatalf("message.created %v", msg)
	}
	cb := byType[notify.CoBrowseRequested][0]
	if cb["session_id"] != "CB-42" || cb["agent"].(map[string]any)["username"] != u.Username {
		t.Fatalf("cobrowse.requested %v: want session CB-42 and agent %s", cb, u.Username)
	}
	var sawSession bool
	for _, d := range byType[notify.UserDataUpdated] {
		if d["key"] == userdata.KeyCoBrowseSessionID && d["value"] == "CB-42" && d["owner"] == "client" {
			sawSession = true
		}
	}
	if !sawSession {
		t.Fatalf("no userdata.updated for CoBrowseSessionId: %v", byType[notify.UserDataUpdated])
	}
	if w := byType[notify.InteractionWrappedUp][0]; w["notes"] != "solved" {
		t.Fatalf("interaction.wrapped_up %v", w)
	}
	if s := byType[notify.SurveySubmitted][0]; s["answers"].(map[string]any)["CSAT"] != "5" {
		t.Fatalf("survey.submitted %v", s)
	}
}

// TestNoChangeWithoutItsEvent: when writing the events fails, the change fails with them (and
// the atomic tests' readChat now compares the events too: no event is left by a failed change).
func TestNoChangeWithoutItsEvent(t *testing.T) {
	t.Parallel()
	m, u, c, id := oneCommitNode(t, agent.Strategy{})
	ctx := context.Background()
	restore := failWrites(t, m, "integration_events", `NEW.type = 'message.created'`)
	mustNotChange(t, m, id, "a message whose event cannot be written", func() error {
		_, err := m.Agents.Send(ctx, u, id, "console:m1", "lost?")
		return err
	})
	if f := c.do("send_message", map[string]any{"text": "lost too?"}); f["ok"] == true {
		t.Fatalf("customer message acknowledged although its event failed: %v", f)
	}
	restore()
	if _, err := m.Agents.Send(ctx, u, id, "console:m1", "lost?"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(eventTypes(chatEvents(t, m, id)), ","), "message.created"); n != 1 {
		t.Fatalf("%d message.created events, want 1 (the retried message)", n)
	}
	// And the transfer emits its event.
	other := newAgent(t, m, "pavel", 2)
	ready(t, m, other)
	if err := m.Agents.Transfer(ctx, u, id, agent.TransferTarget{UserID: other.ID}); err != nil {
		t.Fatal(err)
	}
	evs := chatEvents(t, m, id)
	last := evs[len(evs)-1]
	var d map[string]any
	_ = json.Unmarshal(last.Data, &d)
	if last.Type != notify.InteractionTransferred || d["to_agent"].(map[string]any)["username"] != "pavel" {
		t.Fatalf("last event %s %s, want interaction.transferred to pavel", last.Type, last.Data)
	}
}

// TestWholeTranscriptPages: a transcript longer than one page (chat.MaxTranscriptPage) is read
// whole, in order, by the review pages and the API's detail.
func TestWholeTranscriptPages(t *testing.T) {
	t.Parallel()
	m, _, _, id := oneCommitNode(t, agent.Strategy{})
	ctx := context.Background()
	var next int
	if err := m.DB.Pool.QueryRow(ctx, `SELECT next_index FROM interactions WHERE id = $1`, id).Scan(&next); err != nil {
		t.Fatal(err)
	}
	extra := 2*chat.MaxTranscriptPage + 5
	if _, err := m.DB.Pool.Exec(ctx, `INSERT INTO transcript_events (interaction_id, idx, kind, text)
		SELECT $1, $2 + g, 'message', 'm' || g FROM generate_series(0, $3 - 1) g;
		`, id, next, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE interactions SET next_index = next_index + $2 WHERE id = $1`, id, extra); err != nil {
		t.Fatal(err)
	}
	evs, err := m.Chat.WholeTranscript(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != next+extra {
		t.Fatalf("%d events, want %d", len(evs), next+extra)
	}
	for i, ev := range evs {
		if ev.Index != i {
			t.Fatalf("event %d has index %d", i, ev.Index)
		}
	}
	r := apiCall(t, m, "GET", "/api/v1/interactions/"+id, apiToken(t, m, "crm", "read", ""), nil)
	if n := strings.Count(string(r.raw), `"kind":"message"`); r.status != 200 || n != extra {
		t.Fatalf("API detail: %d with %d messages, want %d", r.status, n, extra)
	}
}
