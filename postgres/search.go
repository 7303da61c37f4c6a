package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentd/agent"
)

// SearchStore is the supervisors' search over interactions, their transcripts and the history
// of their UserData (web/supervisor, docs/supervisor.md), and its audit row.
type SearchStore struct{ db *DB }

// NewSearchStore returns the search store on db.
func NewSearchStore(db *DB) *SearchStore { return &SearchStore{db: db} }

// searchConfig is the text search configuration of the "Text" filter; it must be the one of
// transcript_events.search_vector (migrations/009_search.sql): 'simple' lower-cases words and
// neither stems them nor drops stop words, so a text in any language matches word for word.
const searchConfig = "'simple'"

// Every search statement is planned for its own arguments (pgx.QueryExecModeExec: an unnamed
// statement), never as a cached prepared statement: a generic plan cannot know how common the
// searched words are, and picks the wrong index for one or the other.

// searchQuery is a search's FROM and WHERE and its arguments.
type searchQuery struct {
	where   []string
	args    []any
	tsquery string // the text search's tsquery expression, empty without one
}

func (q *searchQuery) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// tsquery builds the tsquery of the terms from bound parameters only: words and phrases go
// through plainto_tsquery and phraseto_tsquery, which treat every character as text; a prefix
// is letters and digits (agent.ParseSearchText) joined by <-> with :* on the last, the one
// input that to_tsquery sees.
func (q *searchQuery) tsqueryOf(terms []agent.SearchTerm) string {
	parts := make([]string, 0, len(terms))
	for _, t := range terms {
		switch {
		case t.Prefix:
			words := strings.Fields(t.Text)
			parts = append(parts, "to_tsquery("+searchConfig+", "+q.arg(strings.Join(words, " <-> ")+":*")+")")
		case t.Phrase:
			parts = append(parts, "phraseto_tsquery("+searchConfig+", "+q.arg(t.Text)+")")
		default:
			parts = append(parts, "plainto_tsquery("+searchConfig+", "+q.arg(t.Text)+")")
		}
	}
	return "(" + strings.Join(parts, " && ") + ")"
}

// textProbe is how many matching messages a text search looks for first (2,000 measured better
// than 5,000 in the benchmark: the probe of a common word costs less): fewer, and the page
// reads exactly those chats (textIDs); more, and the planner walks the chats in order and stops
// at the page (a common word is found at once that way).
const textProbe = 2000

// buildSearch makes the query of f; textIDs, when not nil, are all the chats whose messages match
// f.Text (the probe found them all).
func buildSearch(f agent.SearchFilter, textIDs []string) *searchQuery {
	q := &searchQuery{}
	if len(f.Text) > 0 && textIDs != nil {
		q.where = append(q.where, "i.id = ANY("+q.arg(textIDs)+"::text[]::uuid[])")
		q.tsquery = q.tsqueryOf(f.Text)
	} else if len(f.Text) > 0 {
		q.tsquery = q.tsqueryOf(f.Text)
		q.where = append(q.where, `EXISTS (SELECT 1 FROM transcript_events te WHERE te.interaction_id = i.id AND te.kind = 'message'
			AND te.search_vector @@ `+q.tsquery+`)`)
	}
	if f.UserDataKey != "" {
		cond := "h.key = " + q.arg(f.UserDataKey)
		if f.UserDataValue != "" || f.ValuePrefix {
			const v = `left(h.new_value #>> '{}', 200)`
			cond += " AND h.new_value IS NOT NULL"
			if f.ValuePrefix {
				// The range is what the index (text_pattern_ops) answers; LIKE is the exact test.
				p := q.arg(f.UserDataValue)
				cond += " AND " + v + " ~>=~ " + p + " AND " + v + " ~<~ (" + p + " || chr(1114111)) AND " + v + " LIKE " + q.arg(escapeLike(f.UserDataValue)+"%")
			} else {
				cond += " AND " + v + " = left(" + q.arg(f.UserDataValue) + ", 200) AND h.new_value #>> '{}' = " + q.arg(f.UserDataValue)
			}
		}
		q.where = append(q.where, "EXISTS (SELECT 1 FROM userdata_history h WHERE h.interaction_id = i.id AND "+cond+")")
	}
	if f.Service != "" {
		// On the joined services row, not a subquery: the planner then knows the service and
		// reads interactions_service_created_idx for it.
		q.where = append(q.where, "s.name = "+q.arg(f.Service))
	}
	if f.Agent != "" {
		// The agent's chats as a list (ARRAY), not a semi-join: the planner, not knowing whose chats
		// they are, walked every chat newest first and checked each one (the benchmark's
		// "UserData key + agent", 60 → 30 ms).
		q.where = append(q.where, `i.id = ANY(ARRAY(SELECT a.interaction_id FROM assignments a WHERE a.accepted_at IS NOT NULL
			AND a.user_id = (SELECT id FROM users WHERE lower(username) = lower(`+q.arg(f.Agent)+`))))`)
	}
	if f.From != nil {
		q.where = append(q.where, "i.created_at >= "+q.arg(*f.From))
	}
	if f.To != nil {
		q.where = append(q.where, "i.created_at < "+q.arg(*f.To))
	}
	if f.State != "" {
		q.where = append(q.where, "i.state = "+q.arg(f.State))
	}
	if f.Disposition != "" {
		q.where = append(q.where, "lower(i.disposition) = lower("+q.arg(f.Disposition)+")")
	}
	if f.CSATMin > 0 {
		var scores []string
		for n := f.CSATMin; n <= f.CSATMax; n++ {
			scores = append(scores, fmt.Sprint(n))
		}
		q.where = append(q.where, "r.answers->>'CSAT' = ANY("+q.arg(scores)+")")
	}
	return q
}

func (q *searchQuery) whereSQL() string {
	if len(q.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.where, " AND ")
}

var searchSortSQL = map[agent.SearchSort]string{
	agent.SortStarted:     "i.created_at",
	agent.SortEnded:       "i.ended_at",
	agent.SortDuration:    "(coalesce(i.ended_at, now()) - i.created_at)",
	agent.SortCustomer:    "lower(i.customer_name)",
	agent.SortService:     "s.name",
	agent.SortState:       "i.state",
	agent.SortDisposition: "lower(i.disposition)",
	agent.SortCSAT:        "r.answers->>'CSAT'",
}

// orderSQL is the ORDER BY of a sort, the sort key's expression and its direction (with NULLS
// LAST where the key may be NULL).
func orderSQL(sort agent.SearchSort, desc bool) (order, key, dir string) {
	col, ok := searchSortSQL[sort]
	if !ok {
		col = searchSortSQL[agent.SortStarted]
	}
	dir = " ASC"
	if desc {
		dir = " DESC"
	}
	nulls := ""
	if sort == agent.SortEnded || sort == agent.SortCSAT {
		// Only these may be NULL (a chat not ended, no survey): last either way. The others
		// keep a plain order, which an index scan of interactions_created_idx gives.
		nulls = " NULLS LAST"
	}
	return " ORDER BY " + col + dir + nulls + ", i.id" + dir, col, dir + nulls
}

const searchColumns = `i.id, i.customer_name AS customer, s.name AS service, i.created_at AS started, i.ended_at AS ended, i.state,
	i.disposition, coalesce(r.answers->>'CSAT', '') AS csat,
	coalesce((SELECT array_agg(u.username ORDER BY a.accepted_at) FROM assignments a JOIN users u ON u.id = a.user_id
		WHERE a.interaction_id = i.id AND a.accepted_at IS NOT NULL), '{}') AS agents`

const searchFrom = ` FROM interactions i JOIN services s ON s.id = i.service_id LEFT JOIN survey_responses r ON r.interaction_id = i.id`

func scanSearch(row pgx.Row, r *agent.SearchResult, snippet bool) error {
	dest := []any{&r.ID, &r.Customer, &r.Service, &r.Started, &r.Ended, &r.State, &r.Disposition, &r.CSAT, &r.Agents}
	if snippet {
		dest = append(dest, &r.Snippet)
	}
	return row.Scan(dest...)
}

// Search returns one page of the interactions that match f, sorted, with a snippet of the first
// matching message for a text search.
func (s *SearchStore) Search(ctx context.Context, f agent.SearchFilter, sort agent.SearchSort, desc bool, offset, limit int) ([]agent.SearchResult, error) {
	ids, err := s.textMatches(ctx, f)
	if err != nil {
		return nil, err
	}
	sql, args, snippet := searchPageSQL(f, ids, sort, desc, offset, limit)
	rows, err := s.db.Pool.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agent.SearchResult, error) {
		var r agent.SearchResult
		err := scanSearch(row, &r, snippet)
		return r, err
	})
	return out, translate(err)
}

// searchPageSQL is the statement of one page of a search, its arguments, and whether it has the
// snippet column.
func searchPageSQL(f agent.SearchFilter, textIDs []string, sort agent.SearchSort, desc bool, offset, limit int) (string, []any, bool) {
	q := buildSearch(f, textIDs)
	order, key, dir := orderSQL(sort, desc)
	if q.tsquery == "" {
		return `SELECT ` + searchColumns + searchFrom + q.whereSQL() + order + " LIMIT " + q.arg(limit) + " OFFSET " + q.arg(offset), q.args, false
	}
	// The excerpt is made for the page's rows only, after the limit, from the row's own messages
	// (by the primary key): "search_vector || ''" keeps the planner off the full-text index, which would
	// find the matching messages of every chat once per row.
	opts := q.arg(`StartSel=` + agent.SnippetStart + `, StopSel=` + agent.SnippetStop + `, MaxWords=25, MinWords=10, MaxFragments=1`)
	sql := `SELECT p.id, p.customer, p.service, p.started, p.ended, p.state, p.disposition, p.csat, p.agents,
		coalesce((SELECT ts_headline(` + searchConfig + `, translate(te.text, E'\uE000\uE001', ''), ` + q.tsquery + `, ` + opts + `)
		FROM transcript_events te WHERE te.interaction_id = p.id AND te.kind = 'message' AND (te.search_vector || ''::tsvector) @@ ` + q.tsquery + `
		ORDER BY te.idx LIMIT 1), '')
		FROM (SELECT ` + searchColumns + `, ` + key + ` AS sort_key` + searchFrom + q.whereSQL() + order +
		" LIMIT " + q.arg(limit) + " OFFSET " + q.arg(offset) + `) p ORDER BY p.sort_key` + dir + `, p.id` + dir
	return sql, q.args, true
}

// textMatches finds, for a text search, the chats with a matching message when there are at
// most textProbe such messages (nil otherwise, or without text). A rare word or phrase is then a
// short list of chats, read by primary key, rather than a walk through every chat in order that
// the planner, misjudging how rare it is, might choose.
func (s *SearchStore) textMatches(ctx context.Context, f agent.SearchFilter) ([]string, error) {
	if len(f.Text) == 0 {
		return nil, nil
	}
	q := &searchQuery{}
	tsq := q.tsqueryOf(f.Text)
	var ids []string
	var n int
	err := s.db.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT m.interaction_id::text), '{}'), count(*) FROM (
		SELECT te.interaction_id FROM transcript_events te WHERE te.kind = 'message' AND te.search_vector @@ `+tsq+`
		LIMIT `+q.arg(textProbe+1)+`) m`, append([]any{pgx.QueryExecModeExec}, q.args...)...).Scan(&ids, &n)
	if err != nil {
		return nil, translate(err)
	}
	if n > textProbe {
		return nil, nil
	}
	return ids, nil
}

// SearchCount counts the interactions that match f.
func (s *SearchStore) SearchCount(ctx context.Context, f agent.SearchFilter) (int64, error) {
	q := buildSearch(f, nil)
	var n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT count(*)`+searchFrom+q.whereSQL(),
		append([]any{pgx.QueryExecModeExec}, q.args...)...).Scan(&n)
	return n, translate(err)
}

// SearchEach calls fn with every interaction that matches f, in order, as the rows arrive from
// the database: the result is streamed, never held. An error from fn, or ctx ending, stops the
// query on the server at once (the connection is closed rather than drained).
func (s *SearchStore) SearchEach(ctx context.Context, f agent.SearchFilter, sort agent.SearchSort, desc bool, fn func(agent.SearchResult) error) error {
	q := buildSearch(f, nil)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	order, _, _ := orderSQL(sort, desc)
	rows, err := s.db.Pool.Query(ctx, `SELECT `+searchColumns+searchFrom+q.whereSQL()+order, append([]any{pgx.QueryExecModeExec}, q.args...)...)
	if err != nil {
		return translate(err)
	}
	// Cancel before Close: Close on a cancelled query does not read the rest of the result.
	defer rows.Close()
	defer cancel()
	for rows.Next() {
		var r agent.SearchResult
		if err := scanSearch(rows, &r, false); err != nil {
			return translate(err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return translate(rows.Err())
}

// SearchChoices returns the service names and the usernames of the agents (every user who ever
// accepted a chat, and every enabled agent) for the search form's selects, sorted.
func (s *SearchStore) SearchChoices(ctx context.Context) (services, agents []string, err error) {
	err = s.db.Pool.QueryRow(ctx, `SELECT
		coalesce((SELECT array_agg(name ORDER BY name) FROM services), '{}'),
		coalesce((SELECT array_agg(username ORDER BY lower(username)) FROM users u WHERE (u.role = 'agent' AND NOT u.disabled)
			OR EXISTS (SELECT 1 FROM assignments a WHERE a.user_id = u.id AND a.accepted_at IS NOT NULL)), '{}')`).Scan(&services, &agents)
	return services, agents, translate(err)
}

// AuditExport records a supervisor's export (action supervisor.export) with its filters, format
// and the number of rows that matched when it started.
func (s *SearchStore) AuditExport(ctx context.Context, userID int64, details map[string]any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = s.db.Pool.Exec(ctx, `INSERT INTO audit_log (user_id, action, details) VALUES ($1, 'supervisor.export', $2)`, userID, raw)
	return translate(err)
}
