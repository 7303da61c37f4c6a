package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
)

const cannedColumns = `c.id, coalesce(c.service_id, 0), coalesce(s.name, ''), c.title, c.body, c.updated_at`

func scanCanned(r pgx.CollectableRow) (agent.CannedResponse, error) {
	var c agent.CannedResponse
	return c, r.Scan(&c.ID, &c.ServiceID, &c.Service, &c.Title, &c.Body, &c.UpdatedAt)
}

// CannedResponses searches canned responses usable in a service (its own and the global ones)
// by title or body; serviceID 0 lists every response. At most limit results, by title.
func (s *AgentStore) CannedResponses(ctx context.Context, serviceID int64, query string, limit int) ([]agent.CannedResponse, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+cannedColumns+` FROM canned_responses c LEFT JOIN services s ON s.id = c.service_id
		WHERE ($1 = 0 OR c.service_id IS NULL OR c.service_id = $1)
			AND ($2 = '' OR c.title ILIKE '%' || $2 || '%' OR c.body ILIKE '%' || $2 || '%')
		ORDER BY lower(c.title), c.id LIMIT $3`, serviceID, escapeLike(query), limit)
	if err != nil {
		return nil, translate(err)
	}
	cs, err := pgx.CollectRows(rows, scanCanned)
	return cs, translate(err)
}

// escapeLike makes a search string match literally inside ILIKE.
func escapeLike(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}

// CannedResponse returns one canned response.
func (s *AgentStore) CannedResponse(ctx context.Context, id int64) (agent.CannedResponse, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+cannedColumns+` FROM canned_responses c LEFT JOIN services s ON s.id = c.service_id
		WHERE c.id = $1`, id)
	if err != nil {
		return agent.CannedResponse{}, translate(err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCanned)
	return c, translate(err, errCannedNotFound())
}

func errCannedNotFound() error {
	return agentd.Errorf(agentd.ENOTFOUND, "not_found", "No such canned response.")
}

// SaveCannedResponse creates (ID 0) or updates a canned response, audited as canned.create or
// canned.update by userID in the same transaction.
func (s *AgentStore) SaveCannedResponse(ctx context.Context, userID int64, c agent.CannedResponse) (int64, error) {
	id := c.ID
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var svc *int64
		service := ""
		if c.ServiceID != 0 {
			svc = &c.ServiceID
			// Checked here rather than left to the foreign key, so the admin gets a clear message.
			if err := tx.QueryRow(ctx, `SELECT name FROM services WHERE id = $1`, c.ServiceID).Scan(&service); err != nil {
				return translate(err, agentd.Errorf(agentd.EINVALID, "service_not_found", "There is no such service."))
			}
		}
		action := "canned.create"
		if id == 0 {
			if err := tx.QueryRow(ctx, `INSERT INTO canned_responses (service_id, title, body) VALUES ($1, $2, $3) RETURNING id`,
				svc, c.Title, c.Body).Scan(&id); err != nil {
				return err
			}
		} else {
			action = "canned.update"
			tag, err := tx.Exec(ctx, `UPDATE canned_responses SET service_id = $2, title = $3, body = $4, updated_at = now() WHERE id = $1`,
				id, svc, c.Title, c.Body)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errCannedNotFound()
			}
		}
		return audit(ctx, tx, userID, action, c.Title, map[string]any{"id": id, "service": service})
	})
	return id, err
}

// DeleteCannedResponse deletes a canned response, audited as canned.delete.
func (s *AgentStore) DeleteCannedResponse(ctx context.Context, userID, id int64) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		var title string
		if err := tx.QueryRow(ctx, `DELETE FROM canned_responses WHERE id = $1 RETURNING title`, id).Scan(&title); err != nil {
			return translate(err, errCannedNotFound())
		}
		return audit(ctx, tx, userID, "canned.delete", title, map[string]any{"id": id})
	})
}

// Services lists every service.
func (s *AgentStore) Services(ctx context.Context) ([]agent.ServiceInfo, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT id, name, display_name, enabled, strategy, created_at FROM services ORDER BY name`)
	if err != nil {
		return nil, translate(err)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agent.ServiceInfo, error) {
		var si agent.ServiceInfo
		var raw []byte
		err := r.Scan(&si.ID, &si.Name, &si.DisplayName, &si.Enabled, &raw, &si.CreatedAt)
		si.Strategy = raw
		return si, err
	})
	return ss, translate(err)
}
