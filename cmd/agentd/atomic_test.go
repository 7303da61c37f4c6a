package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
)

// Every user-visible operation is one commit: a failure anywhere inside it leaves nothing behind,
// and the retry after it does the whole operation once. These tests make Postgres itself fail a
// write midway through an operation (a trigger raising an error on one row), then check that the
// chat's rows are exactly as before, and that a retry after the failure is gone completes it.

var triggerSeq atomic.Int64

// failWrites makes Postgres refuse every insert or update into table whose new row matches cond
// (an SQL expression over NEW) until the returned function is called.
func failWrites(t *testing.T, m *Main, table, cond string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("agentd_test_fail_%d", triggerSeq.Add(1))
	if _, err := m.DB.Pool.Exec(ctx, `CREATE FUNCTION `+name+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF `+cond+` THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.Pool.Exec(ctx, `CREATE TRIGGER `+name+` BEFORE INSERT OR UPDATE ON `+table+`
		FOR EACH ROW EXECUTE FUNCTION `+name+`()`); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if _, err := m.DB.Pool.Exec(ctx, `DROP TRIGGER `+name+` ON `+table+`; DROP FUNCTION `+name+`()`); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// chatRows is everything an operation on a chat may write, read straight from the tables.
type chatRows struct {
	State, Service, Disposition string
	NextIndex                   int
	NextSeq                     int64
	SurveyToken, SurveyAnswered bool
	UserData                    map[string]string // key → value, owner, visibility
	Parties, Assignments        []string
	Notices, Audit              []string
	Events                      []string // integration events, in order
}

func readChat(t *testing.T, m *Main, id string) chatRows {
	t.Helper()
	ctx := context.Background()
	var r chatRows
	if err := m.DB.Pool.QueryRow(ctx, `SELECT i.state, s.name, i.disposition, i.next_index, i.next_seq, i.survey_token_hash IS NOT NULL,
			EXISTS (SELECT 1 FROM survey_responses WHERE interaction_id = i.id)
		FROM interactions i JOIN services s ON s.id = i.service_id WHERE i.id = $1`, id).
		Scan(&r.State, &r.Service, &r.Disposition, &r.NextIndex, &r.NextSeq, &r.SurveyToken, &r.SurveyAnswered); err != nil {
		t.Fatal(err)
	}
	list := func(sql string) []string {
		rows, err := m.DB.Pool.Query(ctx, sql, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	r.UserData = map[string]string{}
	for _, kv := range list(`SELECT key || '=' || value::text || ' ' || owner || ' ' || visible FROM userdata WHERE interaction_id = $1`) {
		k, v, _ := strings.Cut(kv, "=")
		r.UserData[k] = v
	}
	r.Parties = list(`SELECT type || ' ' || name || ' left=' || (left_at IS NOT NULL) FROM parties WHERE interaction_id = $1 ORDER BY joined_at, id`)
	r.Assignments = list(`SELECT user_id || ' ' || state FROM assignments WHERE interaction_id = $1 ORDER BY id`)
	r.Notices = list(`SELECT payload::text FROM notices WHERE interaction_id = $1 ORDER BY seq`)
	r.Audit = list(`SELECT action FROM audit_log WHERE target = $1 ORDER BY id`)
	r.Events = list(`SELECT type FROM integration_events WHERE interaction_id = $1 ORDER BY tx_id, id`)
	return r
}

// mustNotChange runs op, which must fail, and checks that it left every row of the chat as it was.
func mustNotChange(t *testing.T, m *Main, id, what string, op func() error) {
	t.Helper()
	before := readChat(t, m, id)
	if err := op(); err == nil {
		t.Fatalf("%s succeeded although a write inside it failed", what)
	}
	if after := readChat(t, m, id); !reflect.DeepEqual(before, after) {
		t.Fatalf("%s failed midway and left a half-written chat:\nbefore %+v\nafter  %+v", what, before, after)
	}
}

// oneCommitNode starts a node with an agent who has accepted a chat of the default service.
func oneCommitNode(t *testing.T, st agent.Strategy) (*Main, agent.User, *client, string) {
	t.Helper()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	setStrategy(t, m, "default", st)
	u := newAgent(t, m, "olga", 2)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	return m, u, c, id
}

// TestEndIsOneCommit: ending a chat writes its survey link in the commit that ends it. Before,
// the token was committed first and SurveyURL after: when writing SurveyURL failed, the retried
// End found the token, skipped the link, and the customer's survey was lost without an error.
func TestEndIsOneCommit(t *testing.T) {
	t.Parallel()
	m, u, _, id := oneCommitNode(t, agent.Strategy{Survey: &agent.Survey{When: "ended"}})
	ctx := context.Background()
	for _, fault := range []struct{ name, table, cond string }{
		{"SurveyURL", "userdata", `NEW.key = 'SurveyURL'`},
		{"SessionEnded", "transcript_events", `NEW.kind = 'session_ended'`},
	} {
		restore := failWrites(t, m, fault.table, fault.cond)
		mustNotChange(t, m, id, "End failing at "+fault.name, func() error { return m.Agents.End(ctx, u, id) })
		restore()
	}
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	r := readChat(t, m, id)
	if r.State != "ended" || !r.SurveyToken || !strings.Contains(r.UserData["SurveyURL"], "/survey/") {
		t.Fatalf("after the retry: state %s, token %v, SurveyURL %q", r.State, r.SurveyToken, r.UserData["SurveyURL"])
	}
}

// TestCoBrowseJoinedIsOneCommit: joining co-browse writes the agent's three keys, agentd's own
// key, the notice to the customer and the audit row in one commit. Before, they were four
// commits, and a retry after a failure between them counted CoBrowseSessionsQuantity twice.
func TestCoBrowseJoinedIsOneCommit(t *testing.T) {
	t.Parallel()
	m, u, c, id := oneCommitNode(t, agent.Strategy{})
	ctx := context.Background()
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-1"}}))
	for _, fault := range []struct{ name, table, cond string }{
		{"AgentKeys", "userdata", `NEW.key = 'CoBrowseSessionsQuantity'`},
		{"SystemKey", "userdata", `NEW.key LIKE '\_agentd.%'`},
		{"Notice", "notices", `true`},
		{"Audit", "audit_log", `NEW.action = 'cobrowse.joined'`},
	} {
		restore := failWrites(t, m, fault.table, fault.cond)
		mustNotChange(t, m, id, "co-browse joined failing at "+fault.name, func() error { return m.Agents.CoBrowseJoined(ctx, u, id, "CB-1") })
		restore()
	}
	for range 2 { // the second time changes nothing: the agent joined that session already
		if err := m.Agents.CoBrowseJoined(ctx, u, id, "CB-1"); err != nil {
			t.Fatal(err)
		}
	}
	r := readChat(t, m, id)
	if q := r.UserData["CoBrowseSessionsQuantity"]; !strings.HasPrefix(q, "1 agent") {
		t.Fatalf("CoBrowseSessionsQuantity %q, want 1 (owner agent)", q)
	}
	if len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "agent_joined") {
		t.Fatalf("notices %v, want one agent_joined", r.Notices)
	}
	if n := strings.Count(strings.Join(r.Audit, ","), "cobrowse.joined"); n != 1 {
		t.Fatalf("audit %v, want one cobrowse.joined", r.Audit)
	}
}

// TestUserDataEditIsAudited: an agent's UserData edit and its audit row commit together, and a
// retried edit (same command id) is applied and audited once. Before, the audit row was a second
// commit: an edit could be saved with no audit entry.
func TestUserDataEditIsAudited(t *testing.T) {
	t.Parallel()
	m, u, _, id := oneCommitNode(t, agent.Strategy{})
	ctx := context.Background()
	edit := func() error {
		return m.Agents.ChangeUserData(ctx, u, id, "console:edit-1", []userdata.Change{{Key: "Tier", Value: "gold"}})
	}
	restore := failWrites(t, m, "audit_log", `NEW.action = 'userdata.change'`)
	mustNotChange(t, m, id, "a UserData edit whose audit row fails", edit)
	restore()
	for range 2 {
		if err := edit(); err != nil {
			t.Fatal(err)
		}
	}
	r := readChat(t, m, id)
	if !strings.HasPrefix(r.UserData["Tier"], `"gold" agent`) {
		t.Fatalf("Tier %q", r.UserData["Tier"])
	}
	if n := strings.Count(strings.Join(r.Audit, ","), "userdata.change"); n != 1 {
		t.Fatalf("audit %v, want one userdata.change", r.Audit)
	}
}

// TestWrapUpIsOneCommit: wrapping up a chat the customer ended writes the survey link, the
// Disposition and the audit row and frees the agent in one commit. Before, the survey link was
// committed first, even when the wrap-up then failed.
func TestWrapUpIsOneCommit(t *testing.T) {
	t.Parallel()
	m, u, c, id := oneCommitNode(t, agent.Strategy{Dispositions: []string{"Resolved"}, Survey: &agent.Survey{When: "ended"}})
	ctx := context.Background()
	mustOK(t, c.do("leave", nil))
	for _, fault := range []struct{ name, table, cond string }{
		{"SurveyURL", "userdata", `NEW.key = 'SurveyURL'`},
		{"Disposition", "userdata", `NEW.key = 'Disposition'`},
		{"Audit", "audit_log", `NEW.action = 'chat.wrap_up'`},
	} {
		restore := failWrites(t, m, fault.table, fault.cond)
		mustNotChange(t, m, id, "wrap-up failing at "+fault.name, func() error { return m.Agents.WrapUp(ctx, u, id, "Resolved", "ok") })
		restore()
	}
	if err := m.Agents.WrapUp(ctx, u, id, "Resolved", "ok"); err != nil {
		t.Fatal(err)
	}
	r := readChat(t, m, id)
	if r.State != "wrapped" || r.Disposition != "Resolved" || !strings.HasPrefix(r.UserData["Disposition"], `"Resolved" agent`) ||
		r.UserData["SurveyURL"] == "" || r.Assignments[len(r.Assignments)-1] != fmt.Sprint(u.ID)+" done" {
		t.Fatalf("after the retry: %+v", r)
	}
}

// TestTransferIsOneCommit: a transfer (the agent leaves, the chat is queued on the other service,
// audited) is one commit.
func TestTransferIsOneCommit(t *testing.T) {
	t.Parallel()
	m, u, _, id := oneCommitNode(t, agent.Strategy{})
	ctx := context.Background()
	if err := m.DB.EnsureService(ctx, "billing", "Billing", chat.Strategy{}); err != nil {
		t.Fatal(err)
	}
	transfer := func() error { return m.Agents.Transfer(ctx, u, id, agent.TransferTarget{Service: "billing"}) }
	for _, fault := range []struct{ name, table, cond string }{
		{"PartyLeft", "transcript_events", `NEW.kind = 'party_left'`},
		{"Audit", "audit_log", `NEW.action = 'chat.transfer'`},
	} {
		restore := failWrites(t, m, fault.table, fault.cond)
		mustNotChange(t, m, id, "transfer failing at "+fault.name, transfer)
		restore()
	}
	if err := transfer(); err != nil {
		t.Fatal(err)
	}
	if r := readChat(t, m, id); r.Service != "billing" || r.State != "queued" {
		t.Fatalf("after the retry: service %s state %s", r.Service, r.State)
	}
}

// TestSurveyAnswerIsOneCommit: the survey's answers and their Survey.* UserData commit together;
// a failed answer can be given again.
func TestSurveyAnswerIsOneCommit(t *testing.T) {
	t.Parallel()
	m, u, _, id := oneCommitNode(t, agent.Strategy{Survey: &agent.Survey{When: "ended"}})
	ctx := context.Background()
	if err := m.Agents.End(ctx, u, id); err != nil {
		t.Fatal(err)
	}
	url := strings.Trim(strings.Fields(readChat(t, m, id).UserData["SurveyURL"])[0], `"`)
	token := url[strings.LastIndex(url, "/")+1:]
	answer := func() error {
		return m.Surveys.SubmitSurvey(ctx, token, map[string]string{"CSAT": "5", "Comment": "quick"})
	}
	restore := failWrites(t, m, "userdata", `NEW.key = 'Survey.Comment'`)
	mustNotChange(t, m, id, "a survey answer failing midway", answer)
	restore()
	if err := answer(); err != nil {
		t.Fatal(err)
	}
	r := readChat(t, m, id)
	if !r.SurveyAnswered || !strings.HasPrefix(r.UserData["Survey.CSAT"], `"5"`) || !strings.HasPrefix(r.UserData["Survey.Comment"], `"quick"`) {
		t.Fatalf("after the retry: %+v", r)
	}
}
