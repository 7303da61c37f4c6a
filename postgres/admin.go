package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
)

// This file holds the administration statements behind agent.AdminStore. Every change writes its
// audit row in its own transaction, so a change is never committed without it.

const serviceColumns = `id, name, display_name, enabled, strategy, created_at`

func scanService(r pgx.Row) (agent.ServiceInfo, error) {
	var si agent.ServiceInfo
	var raw []byte
	err := r.Scan(&si.ID, &si.Name, &si.DisplayName, &si.Enabled, &raw, &si.CreatedAt)
	si.Strategy = raw
	return si, err
}

func errServiceNotFound(name string) error {
	return agentd.Errorf(agentd.ENOTFOUND, "service_not_found", "There is no service named %q.", name)
}

// Service returns a service by name.
func (s *AgentStore) Service(ctx context.Context, name string) (agent.ServiceInfo, error) {
	si, err := scanService(s.db.Pool.QueryRow(ctx, `SELECT `+serviceColumns+` FROM services WHERE name = $1`, name))
	return si, translate(err, errServiceNotFound(name))
}

// CreateService inserts a service, audited as service.create by actorID.
func (s *AgentStore) CreateService(ctx context.Context, actorID int64, si agent.ServiceInfo) (agent.ServiceInfo, error) {
	var out agent.ServiceInfo
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = scanService(tx.QueryRow(ctx, `INSERT INTO services (name, display_name, enabled, strategy) VALUES ($1, $2, $3, $4)
			RETURNING `+serviceColumns, si.Name, si.DisplayName, si.Enabled, []byte(si.Strategy)))
		if err != nil {
			if agentd.ErrorClass(translate(err)) == agentd.ECONFLICT {
				return agentd.Errorf(agentd.ECONFLICT, "service_exists", "A service named %q exists already.", si.Name)
			}
			return err
		}
		return audit(ctx, tx, actorID, "service.create", si.Name, map[string]any{"display_name": si.DisplayName, "enabled": si.Enabled})
	})
	return out, err
}

// UpdateService replaces a service's display name, enabled flag and strategy (validated by the
// caller), audited as service.update by actorID with details.
func (s *AgentStore) UpdateService(ctx context.Context, actorID int64, si agent.ServiceInfo, details any) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE services SET display_name = $2, enabled = $3, strategy = $4 WHERE id = $1`,
			si.ID, si.DisplayName, si.Enabled, []byte(si.Strategy))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errServiceNotFound(si.Name)
		}
		return audit(ctx, tx, actorID, "service.update", si.Name, details)
	})
}

// insertUser inserts a user with its service memberships and returns its id.
func insertUser(ctx context.Context, tx pgx.Tx, nu agent.NewUser, passwordHash string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO users (username, display_name, password_hash, role, capacity)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, nu.Username, nu.DisplayName, passwordHash, nu.Role, nu.Capacity).Scan(&id)
	if err != nil {
		if agentd.ErrorClass(translate(err)) == agentd.ECONFLICT {
			return 0, agentd.Errorf(agentd.ECONFLICT, "username_taken", "A user named %q exists already.", nu.Username)
		}
		return 0, err
	}
	return id, setUserServices(ctx, tx, id, nu.Services)
}

// CreateUserAudited inserts a user, audited as user.create by actorID (without the password).
func (s *AgentStore) CreateUserAudited(ctx context.Context, actorID int64, nu agent.NewUser, passwordHash string) (agent.User, error) {
	var u agent.User
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		id, err := insertUser(ctx, tx, nu, passwordHash)
		if err != nil {
			return err
		}
		if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id)); err != nil {
			return err
		}
		return audit(ctx, tx, actorID, "user.create", u.Username, map[string]any{
			"id": u.ID, "display_name": u.DisplayName, "role": u.Role, "capacity": u.Capacity, "services": nonNilStrings(u.Services),
		})
	})
	return u, err
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UpdateUserAudited changes a user's profile, services and (with a non-empty passwordHash) password,
// audited as user.update by actorID with details. A disabled user's browser sessions end at once;
// so do those of a user whose password someone else changed.
//
// The change is announced to the user's consoles on every node, which then re-read the user: a
// disabled account's open consoles close at once.
func (s *AgentStore) UpdateUserAudited(ctx context.Context, actorID int64, u agent.User, passwordHash string, details any) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET display_name = $2, role = $3, capacity = $4, disabled = $5,
			password_hash = CASE WHEN $6 = '' THEN password_hash ELSE $6 END WHERE id = $1`,
			u.ID, u.DisplayName, u.Role, u.Capacity, u.Disabled, passwordHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errUserNotFound()
		}
		if u.Disabled || (passwordHash != "" && u.ID != actorID) {
			if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, u.ID); err != nil {
				return err
			}
		}
		if err := setUserServices(ctx, tx, u.ID, u.Services); err != nil {
			return err
		}
		if err := audit(ctx, tx, actorID, "user.update", u.Username, details); err != nil {
			return err
		}
		return tx.notifyAgent(ctx, u.ID)
	})
}

// AuditLog returns the newest audit entries first.
func (s *AgentStore) AuditLog(ctx context.Context, limit int) ([]agent.AuditEntry, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+auditColumns+`
		FROM audit_log a LEFT JOIN users u ON u.id = a.user_id ORDER BY a.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, translate(err)
	}
	es, err := pgx.CollectRows(rows, scanAuditEntry)
	return es, translate(err)
}

// auditColumns are what scanAuditEntry reads, from audit_log a LEFT JOIN users u.
const auditColumns = `a.id, a.at, coalesce(a.user_id, 0), coalesce(u.username, ''), a.action, a.target, a.details`

func scanAuditEntry(r pgx.CollectableRow) (agent.AuditEntry, error) {
	var e agent.AuditEntry
	var details []byte
	err := r.Scan(&e.ID, &e.At, &e.UserID, &e.Username, &e.Action, &e.Target, &details)
	e.Details = details
	return e, err
}

var _ agent.AdminStore = (*AgentStore)(nil)
