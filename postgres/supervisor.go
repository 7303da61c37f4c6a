package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"agentd/agent"
)

// SupervisorStore is the supervisors' reads and audit rows that the other stores do not have
// (web/supervisor): the audit rows of one interaction, and the audit row of a supervisor's view.
type SupervisorStore struct{ db *DB }

// NewSupervisorStore returns the supervisors' store on db.
func NewSupervisorStore(db *DB) *SupervisorStore { return &SupervisorStore{db: db} }

// interactionAuditLimit bounds the audit rows one interaction view shows.
const interactionAuditLimit = 500

// InteractionAudit returns the audit rows whose target is the interaction, oldest first.
func (s *SupervisorStore) InteractionAudit(ctx context.Context, interactionID string) ([]agent.AuditEntry, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+auditColumns+`
		FROM audit_log a LEFT JOIN users u ON u.id = a.user_id WHERE a.target = $1 ORDER BY a.id LIMIT $2`, interactionID, interactionAuditLimit)
	if err != nil {
		return nil, translate(err)
	}
	es, err := pgx.CollectRows(rows, scanAuditEntry)
	return es, translate(err)
}

// AuditView records that a supervisor opened an interaction's review (action supervisor.view).
func (s *SupervisorStore) AuditView(ctx context.Context, userID int64, interactionID string) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO audit_log (user_id, action, target) VALUES ($1, 'supervisor.view', $2)`, userID, interactionID)
	return translate(err)
}
