// Package migrations embeds the numbered SQL migrations. They are applied by postgres.Migrate
// under an advisory lock, so several agentd nodes starting at once migrate exactly once.
package migrations

import "embed"

// FS holds the migration files, named NNN_description.sql (tern format).
//
//go:embed *.sql
var FS embed.FS
