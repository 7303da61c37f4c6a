package postgres_test

import (
	"context"
	"testing"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/postgres"
	"agentd/postgres/pgtest"
)

// TestMonitorSessions: a monitoring session counts while its heartbeat is within MonitorTTL; one
// left behind by a crashed node (its heartbeat older) stops counting, and the next start sweeps
// it. Renewing a swept session is not_found; stopping twice audits once.
func TestMonitorSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	var iid string
	var uid int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO interactions (service_id, secure_key_hash, start_token_hash)
		SELECT id, '\x01', '\x02' FROM services ORDER BY id LIMIT 1 RETURNING id`).Scan(&iid); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO users (username, display_name, password_hash, role)
		VALUES ('sam', 'Sam', 'x', 'supervisor') RETURNING id`).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewMonitorStore(postgres.NewCommitter(db, "node-test", nil))
	live := agent.Monitor{ID: "00000000-0000-4000-8000-000000000001", InteractionID: iid, UserID: uid}
	dead := agent.Monitor{ID: "00000000-0000-4000-8000-000000000002", InteractionID: iid, UserID: uid}
	if err := store.StartMonitor(ctx, dead); err != nil {
		t.Fatal(err)
	}
	// The node of "dead" crashed: its heartbeat is no longer renewed.
	if _, err := db.Pool.Exec(ctx, `UPDATE supervisor_monitors SET heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1`,
		dead.ID, postgres.MonitorTTL.Seconds()+1); err != nil {
		t.Fatal(err)
	}
	ms, err := store.Monitors(ctx, iid)
	if err != nil || len(ms) != 0 {
		t.Fatalf("an expired session counts: %v %v", ms, err)
	}
	if err := store.StartMonitor(ctx, live); err != nil {
		t.Fatal(err)
	}
	ms, err = store.Monitors(ctx, iid)
	if err != nil || len(ms) != 1 || ms[0].ID != live.ID || ms[0].Name != "Sam" {
		t.Fatalf("monitors: %+v %v", ms, err)
	}
	if got := agent.MonitoredBy(ms); got != "Monitored by Sam" {
		t.Fatalf("line %q", got)
	}
	if err := store.RenewMonitor(ctx, dead.ID); agentd.ErrorCode(err) != "monitor_not_found" {
		t.Fatalf("renewing a swept session: %v", err)
	}
	if err := store.RenewMonitor(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := store.StopMonitor(ctx, live); err != nil {
			t.Fatal(err)
		}
	}
	var starts, stops int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'supervisor.monitor_start'),
		count(*) FILTER (WHERE action = 'supervisor.monitor_stop') FROM audit_log WHERE target = $1`, iid).Scan(&starts, &stops); err != nil {
		t.Fatal(err)
	}
	if starts != 2 || stops != 1 {
		t.Fatalf("audit: %d starts, %d stops; want 2 and 1", starts, stops)
	}
	// A whisper into a queued chat is stored for the agent only, with no party.
	n, err := store.Whisper(ctx, agent.WhisperRequest{InteractionID: iid, User: agent.User{ID: uid, Username: "sam", DisplayName: "Sam"}, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := n.Whisper(); !ok || w.From != "Sam" || w.Text != "hi" || n.Audience != chat.AudienceAgent || n.Party.ID != "" {
		t.Fatalf("whisper stored as %+v", n)
	}
}
