package postgres

import (
	"context"
	"encoding/json"

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
