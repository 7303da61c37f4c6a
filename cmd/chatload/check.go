package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"
)

// storedEvent is one row of transcript_events.
type storedEvent struct {
	Kind string
	Text string
}

// transcripts reads the stored transcript of every session, by index.
func transcripts(ctx context.Context, db *pgxpool.Pool, sessions []string) (map[string][]storedEvent, []string, error) {
	out := map[string][]storedEvent{}
	var bad []string
	rows, err := db.Query(ctx, `SELECT interaction_id::text, idx, kind, text FROM transcript_events
		WHERE interaction_id = ANY($1::uuid[]) ORDER BY interaction_id, idx`, sessions)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var iid, kind, t string
		var idx int
		if err := rows.Scan(&iid, &idx, &kind, &t); err != nil {
			return nil, nil, err
		}
		if idx != len(out[iid]) {
			bad = append(bad, fmt.Sprintf("session %s: stored indexes not contiguous: index %d after %d events", iid, idx, len(out[iid])))
		}
		for len(out[iid]) < idx {
			out[iid] = append(out[iid], storedEvent{Kind: "(missing)"})
		}
		out[iid] = append(out[iid], storedEvent{Kind: kind, Text: t})
	}
	return out, bad, rows.Err()
}

// check verifies the invariants over the log and Postgres and returns every violation:
//   - every acknowledged message is stored exactly once, at its acknowledged index;
//   - a message never acknowledged is stored at most once;
//   - every session's indexes are contiguous from 0;
//   - every customer surfaced every event of its chat exactly once, in index order, each as
//     stored, with no gap after any reconnect; each connection's pushes came in rising order,
//     none twice;
//   - every console connection showed each chat's transcript from 0 without a gap or a
//     repeat, and the agent's last connection showed all of it.
//
// Without complete (the drain timed out), parties may be behind: only what they showed is
// checked, not that they showed everything.
func check(ctx context.Context, db *pgxpool.Pool, l *Log, complete bool) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var sessions []string
	for _, v := range l.views {
		if v.Session != "" && !seen[v.Session] {
			seen[v.Session] = true
			sessions = append(sessions, v.Session)
		}
	}
	sort.Strings(sessions)
	stored, bad, err := transcripts(ctx, db, sessions)
	if err != nil {
		return nil, err
	}
	var out []string
	out = append(out, bad...)
	for _, s := range l.order {
		if s.Kind != "message" {
			continue // a start is checked by its customer's view; typing and UserData are not in the transcript
		}
		var at []int
		for i, ev := range stored[s.Session] {
			if ev.Kind == "message" && ev.Text == s.Text {
				at = append(at, i)
			}
		}
		switch {
		case !s.Acked.IsZero() && (len(at) != 1 || at[0] != s.Index):
			out = append(out, fmt.Sprintf("%s message %s acknowledged at index %d is stored at %v", s.From, s.ID, s.Index, at))
		case s.Acked.IsZero() && len(at) > 1:
			out = append(out, fmt.Sprintf("%s message %s (never acknowledged) is stored %d times", s.From, s.ID, len(at)))
		}
	}
	// Per agent, the views of one chat: only the last connection must be complete.
	for _, v := range l.views {
		evs := stored[v.Session]
		for ci, conn := range v.Conns {
			for i := 1; i < len(conn); i++ {
				if conn[i] <= conn[i-1] {
					out = append(out, fmt.Sprintf("%s, session %s, connection %d: index %d pushed after %d (repeat or out of order)", v.Party, v.Session, ci+1, conn[i], conn[i-1]))
					break
				}
			}
		}
		if v.Party[:5] == "agent" {
			for ci, conn := range v.Conns {
				for i, idx := range conn {
					if idx != i {
						out = append(out, fmt.Sprintf("%s, session %s, console connection %d: item %d has index %d (gap or repeat)", v.Party, v.Session, ci+1, i, idx))
						break
					}
				}
			}
			if n := len(v.Conns); complete && n > 0 && len(v.Conns[n-1]) != len(evs) {
				out = append(out, fmt.Sprintf("%s, session %s: the console shows %d of %d stored events", v.Party, v.Session, len(v.Conns[n-1]), len(evs)))
			}
			continue
		}
		if len(v.Shown) > len(evs) || (complete && len(v.Shown) != len(evs)) {
			out = append(out, fmt.Sprintf("%s, session %s: surfaced %d of %d stored events", v.Party, v.Session, len(v.Shown), len(evs)))
		}
		for i, ev := range v.Shown {
			if ev.Index != i {
				out = append(out, fmt.Sprintf("%s, session %s: surfaced index %d as event number %d (gap or duplicate)", v.Party, v.Session, ev.Index, i))
				break
			}
			if i < len(evs) && (evs[i].Kind != ev.Kind || (ev.Kind == "message" && evs[i].Text != ev.Text)) {
				out = append(out, fmt.Sprintf("%s, session %s: event %d surfaced as %s %.40q, stored as %s %.40q", v.Party, v.Session, i, ev.Kind, ev.Text, evs[i].Kind, evs[i].Text))
				break
			}
		}
	}
	return out, nil
}
