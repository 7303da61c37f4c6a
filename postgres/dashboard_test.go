package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"agentd/postgres"
	"agentd/postgres/pgtest"
)

// TestDashboardIndexes: every statement of the dashboard reads interactions and assignments
// through an index, however large the tables grow: with sequential scans made as expensive as the
// planner allows, no plan scans either table whole. (services and users are read whole: a
// deployment has tens of them, not millions.)
func TestDashboardIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	now := time.Now()
	args := map[string][]any{
		"Queues":       {now},
		"Agents":       nil,
		"LiveChats":    {postgres.LiveChatLimit},
		"Trend":        {now.Add(-24 * time.Hour), now, float64(3600)},
		"Dispositions": {now.Add(-24 * time.Hour), now},
	}
	if len(args) != len(postgres.DashboardStatements) {
		t.Fatalf("statements %d, arguments for %d", len(postgres.DashboardStatements), len(args))
	}
	for name, sql := range postgres.DashboardStatements {
		q := struct {
			name, sql string
			args      []any
		}{name, sql, args[name]}
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			_ = tx.Rollback(ctx)
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, `EXPLAIN `+q.sql, q.args...)
		if err != nil {
			_ = tx.Rollback(ctx)
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				_ = tx.Rollback(ctx)
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		_ = tx.Rollback(ctx)
		text := strings.Join(plan, "\n")
		for _, table := range []string{"interactions", "assignments", "parties", "survey_responses"} {
			if strings.Contains(text, "Seq Scan on "+table) {
				t.Errorf("%s scans %s whole:\n%s", q.name, table, text)
			}
		}
	}
}
