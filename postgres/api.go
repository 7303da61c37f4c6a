package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/notify"
)

// APIStore holds the read models of the integrator REST API (web/api): listings and checks that
// no other surface needs.
type APIStore struct{ db *DB }

// NewAPIStore returns the API's read models on db.
func NewAPIStore(db *DB) *APIStore { return &APIStore{db: db} }

// interactionUpdated is when an interaction last changed: its state times and its newest
// transcript event, UserData change or notice.
const interactionUpdated = `greatest(i.created_at, i.queued_at, i.ended_at, i.wrapped_at,
	(SELECT max(te.created_at) FROM transcript_events te WHERE te.interaction_id = i.id),
	(SELECT max(uh.created_at) FROM userdata_history uh WHERE uh.interaction_id = i.id),
	(SELECT max(n.created_at) FROM notices n WHERE n.interaction_id = i.id))`

// Interactions lists interactions newest first (creation time, then id), filtered by f, at most
// f.Limit of them.
func (s *APIStore) Interactions(ctx context.Context, f notify.InteractionFilter) ([]notify.InteractionSummary, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.ID != "" {
		if !validUUID(f.ID) {
			return nil, nil
		}
		where = append(where, "i.id = "+arg(f.ID))
	}
	if f.State != "" {
		where = append(where, "i.state = "+arg(f.State))
	}
	if f.Service != "" {
		where = append(where, "s.name = "+arg(f.Service))
	}
	if f.Agent != "" {
		where = append(where, `EXISTS (SELECT 1 FROM assignments a JOIN users u ON u.id = a.user_id
			WHERE a.interaction_id = i.id AND a.accepted_at IS NOT NULL AND lower(u.username) = lower(`+arg(f.Agent)+`))`)
	}
	if f.UserID != 0 {
		where = append(where, "EXISTS (SELECT 1 FROM assignments a WHERE a.interaction_id = i.id AND a.user_id = "+arg(f.UserID)+")")
	}
	if f.UpdatedSince != nil {
		where = append(where, interactionUpdated+" >= "+arg(*f.UpdatedSince))
	}
	if f.After != nil {
		where = append(where, "(i.created_at, i.id) < ("+arg(f.After.CreatedAt)+", "+arg(f.After.ID)+"::uuid)")
	}
	q := `SELECT i.id, s.name, i.state, i.customer_name, i.subject, i.disposition, i.created_at, ` + interactionUpdated + `,
		i.queued_at, i.ended_at, coalesce(i.end_reason, ''),
		coalesce((SELECT array_agg(u.username ORDER BY a.accepted_at) FROM assignments a JOIN users u ON u.id = a.user_id
			WHERE a.interaction_id = i.id AND a.accepted_at IS NOT NULL), '{}')
		FROM interactions i JOIN services s ON s.id = i.service_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY i.created_at DESC, i.id DESC LIMIT " + arg(f.Limit)
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notify.InteractionSummary, error) {
		var in notify.InteractionSummary
		err := row.Scan(&in.ID, &in.Service, &in.State, &in.CustomerName, &in.Subject, &in.Disposition, &in.CreatedAt, &in.UpdatedAt,
			&in.QueuedAt, &in.EndedAt, &in.EndReason, &in.Agents)
		return in, err
	})
	return out, translate(err)
}

// AssignedTo reports whether the interaction was ever assigned (offered or accepted) to the
// user; an interaction that does not exist answers not_found, like one not assigned.
func (s *APIStore) AssignedTo(ctx context.Context, interactionID string, userID int64) error {
	notFound := agentd.Errorf(agentd.ENOTFOUND, "interaction_not_found", "No interaction with this id.")
	if !validUUID(interactionID) {
		return notFound
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM assignments WHERE interaction_id = $1 AND user_id = $2)`,
		interactionID, userID).Scan(&ok)
	if err != nil {
		return translate(err)
	}
	if !ok {
		return notFound
	}
	return nil
}

// Agents lists the enabled users with their presence, load, capacity and services, by username.
func (s *APIStore) Agents(ctx context.Context) ([]notify.AgentStatus, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT u.username, u.display_name, u.role, u.state, u.not_ready_reason,
		(SELECT count(*) FROM assignments a WHERE a.user_id = u.id AND a.state IN ('offered', 'active')), u.capacity,
		coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM user_services us JOIN services s ON s.id = us.service_id
			WHERE us.user_id = u.id), '{}')
		FROM users u WHERE NOT u.disabled ORDER BY lower(u.username)`)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notify.AgentStatus, error) {
		var a notify.AgentStatus
		err := row.Scan(&a.Username, &a.DisplayName, &a.Role, &a.State, &a.NotReadyReason, &a.Load, &a.Capacity, &a.Services)
		return a, err
	})
	return out, translate(err)
}
