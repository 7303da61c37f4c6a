package postgres

import (
	"context"
	"encoding/json"

	"agentd"
	"agentd/chat"
)

// EnsureService creates a service if no service has that name; an existing one is left as it is.
func (db *DB) EnsureService(ctx context.Context, name, displayName string, strategy chat.Strategy) error {
	raw, err := json.Marshal(strategy)
	if err != nil {
		return err
	}
	_, err = db.Pool.Exec(ctx, `INSERT INTO services (name, display_name, strategy) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, displayName, raw)
	return translate(err)
}

// SetServiceStrategy replaces a service's strategy (raw JSON, validated by the caller).
func (db *DB) SetServiceStrategy(ctx context.Context, name string, raw json.RawMessage) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE services SET strategy = $2 WHERE name = $1`, name, []byte(raw))
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return agentd.Errorf(agentd.ENOTFOUND, "service_not_found", "There is no service named %q.", name)
	}
	return nil
}
