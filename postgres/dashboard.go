package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd/agent"
)

// DashboardStore reads the figures of the supervisors' live dashboard (web/supervisor,
// docs/supervisor.md). Every read is one statement on the indexes the tables have already: the
// queue by interactions_queue_idx, offered and active chats through their open assignment
// (assignments_load_idx, whose predicate is state IN ('offered', 'active')), today's and the
// charts' chats by interactions_created_idx, a chat's first acceptance by
// assignments_interaction_idx, its survey by survey_responses' key.
type DashboardStore struct{ db *DB }

// NewDashboardStore returns the dashboard's store on db.
func NewDashboardStore(db *DB) *DashboardStore { return &DashboardStore{db: db} }

// liveChatLimit bounds the live chats one read returns (oldest first).
const liveChatLimit = 500

// openChats are the chats not over: queued ones from the queue's index, offered and active ones
// through their open assignment.
const openChats = `SELECT i.id, i.service_id, i.state, i.queued_at FROM interactions i WHERE i.state = 'queued'
	UNION
	SELECT i.id, i.service_id, i.state, i.queued_at FROM assignments a JOIN interactions i ON i.id = a.interaction_id
	WHERE a.state IN ('offered', 'active') AND i.state IN ('offered', 'active')`

// The dashboard's statements (dashboard_test.go checks that each reads interactions and
// assignments through their indexes).
const (
	queuesSQL = `WITH open AS (` + openChats + `),
		today AS (SELECT service_id, count(*) AS offered, count(*) FILTER (WHERE state = 'abandoned') AS abandoned
			FROM interactions WHERE created_at >= $1 GROUP BY service_id),
		now_open AS (SELECT service_id, count(*) FILTER (WHERE state IN ('queued', 'offered')) AS waiting,
			min(queued_at) FILTER (WHERE state IN ('queued', 'offered')) AS oldest,
			count(*) FILTER (WHERE state = 'active') AS active FROM open GROUP BY service_id)
		SELECT sv.id, sv.name, sv.display_name, coalesce(o.waiting, 0), o.oldest, coalesce(t.offered, 0),
			coalesce(o.active, 0), coalesce(t.abandoned, 0)
		FROM services sv LEFT JOIN today t ON t.service_id = sv.id LEFT JOIN now_open o ON o.service_id = sv.id
		WHERE sv.enabled ORDER BY lower(sv.display_name), sv.id`
	agentsSQL = `SELECT u.id, u.username, u.display_name, u.role, u.state, u.not_ready_reason, u.state_since,
			(SELECT count(*) FROM assignments a WHERE a.user_id = u.id AND a.state IN ('offered', 'active')), u.capacity
		FROM users u WHERE NOT u.disabled
			AND (u.role = 'agent' OR (u.capacity > 0 AND EXISTS (SELECT 1 FROM user_services us WHERE us.user_id = u.id)))
		ORDER BY lower(u.display_name), u.id`
	liveChatsSQL = `SELECT i.id::text, i.customer_name, sv.display_name, i.created_at, i.pending_since,
			coalesce((SELECT array_agg(p.name ORDER BY p.joined_at, p.id) FROM parties p
				WHERE p.interaction_id = i.id AND p.type IN ('agent', 'supervisor') AND p.left_at IS NULL), '{}')
		FROM assignments a JOIN interactions i ON i.id = a.interaction_id JOIN services sv ON sv.id = i.service_id
		WHERE a.state = 'active' AND i.state = 'active'
		ORDER BY i.created_at, i.id LIMIT $1`
	trendSQL = `WITH b AS (
			SELECT g AS start FROM generate_series($1::timestamptz, $2::timestamptz - make_interval(secs => $3), make_interval(secs => $3)) g),
		c AS (SELECT i.created_at, i.state, i.ended_at,
				(SELECT min(a.accepted_at) FROM assignments a WHERE a.interaction_id = i.id) AS answered_at,
				CASE WHEN r.answers->>'CSAT' ~ '^[1-5]$' THEN (r.answers->>'CSAT')::int END AS csat
			FROM interactions i LEFT JOIN survey_responses r ON r.interaction_id = i.id
			WHERE i.created_at >= $1 AND i.created_at < $2)
		SELECT b.start, count(c.created_at), count(c.answered_at), count(*) FILTER (WHERE c.state = 'abandoned'),
			avg(extract(epoch FROM c.answered_at - c.created_at)),
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM c.answered_at - c.created_at)),
			avg(extract(epoch FROM c.ended_at - c.answered_at)) FILTER (WHERE c.ended_at >= c.answered_at),
			count(c.csat), avg(c.csat)::float8
		FROM b LEFT JOIN c ON c.created_at >= b.start AND c.created_at < b.start + make_interval(secs => $3)
		GROUP BY b.start ORDER BY b.start`
	dispositionsSQL = `SELECT disposition, count(*) FROM interactions
		WHERE created_at >= $1 AND created_at < $2 AND disposition <> '' GROUP BY disposition ORDER BY count(*) DESC, disposition`
)

// Queues returns every enabled service's queue, by display name: the chats waiting now and the
// oldest of their queue times, the active chats, and of the chats created since dayStart those
// offered (all of them) and abandoned.
func (s *DashboardStore) Queues(ctx context.Context, dayStart time.Time) ([]agent.QueueStat, error) {
	rows, err := s.db.Pool.Query(ctx, queuesSQL, dayStart)
	if err != nil {
		return nil, translate(err)
	}
	qs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.QueueStat, error) {
		var q agent.QueueStat
		err := r.Scan(&q.ServiceID, &q.Service, &q.DisplayName, &q.Waiting, &q.OldestSince, &q.Offered, &q.Active, &q.Abandoned)
		return q, err
	})
	return qs, translate(err)
}

// Agents returns the users who take chats and are not disabled, by display name: every agent,
// and supervisors and admins who have a service and a capacity. Load counts open assignments
// (offered and active), as the router does.
func (s *DashboardStore) Agents(ctx context.Context) ([]agent.AgentStat, error) {
	rows, err := s.db.Pool.Query(ctx, agentsSQL)
	if err != nil {
		return nil, translate(err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.AgentStat, error) {
		var a agent.AgentStat
		err := r.Scan(&a.ID, &a.Username, &a.DisplayName, &a.Role, &a.State, &a.NotReadyReason, &a.StateSince, &a.Load, &a.Capacity)
		return a, err
	})
	return as, translate(err)
}

// LiveChats returns the chats an agent has accepted and that have not ended, oldest first (at
// most liveChatLimit), with the agents and supervisors in each now.
func (s *DashboardStore) LiveChats(ctx context.Context) ([]agent.LiveChat, error) {
	rows, err := s.db.Pool.Query(ctx, liveChatsSQL, liveChatLimit)
	if err != nil {
		return nil, translate(err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.LiveChat, error) {
		var c agent.LiveChat
		err := r.Scan(&c.ID, &c.Customer, &c.Service, &c.StartedAt, &c.PendingSince, &c.Agents)
		return c, err
	})
	return cs, translate(err)
}

// Trend returns the figures of the chats created in [from, to), one per period of step, oldest
// first, every period present (zero when no chat arrived). A chat counts in the period of its
// created_at, the moment it entered the queue; its wait ends at its first acceptance (the
// earliest accepted_at of its assignments); its handle time runs from then to ended_at; CSAT is
// the survey's CSAT answer when it is 1 to 5.
func (s *DashboardStore) Trend(ctx context.Context, from, to time.Time, step time.Duration) ([]agent.Figures, error) {
	rows, err := s.db.Pool.Query(ctx, trendSQL, from, to, step.Seconds())
	if err != nil {
		return nil, translate(err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.Figures, error) {
		var f agent.Figures
		var wait, p90, handle *float64
		err := r.Scan(&f.Start, &f.Chats, &f.Answered, &f.Abandoned, &wait, &p90, &handle, &f.Rated, &f.AvgCSAT)
		f.AvgWait, f.P90Wait, f.AvgHandle = seconds(wait), seconds(p90), seconds(handle)
		return f, err
	})
	return fs, translate(err)
}

func seconds(v *float64) *time.Duration {
	if v == nil {
		return nil
	}
	d := time.Duration(*v * float64(time.Second)).Round(time.Millisecond)
	return &d
}

// Dispositions counts the dispositions of the chats created in [from, to) that were wrapped up
// with one, most frequent first.
func (s *DashboardStore) Dispositions(ctx context.Context, from, to time.Time) ([]agent.DispositionCount, error) {
	rows, err := s.db.Pool.Query(ctx, dispositionsSQL, from, to)
	if err != nil {
		return nil, translate(err)
	}
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[agent.DispositionCount])
	return ds, translate(err)
}
