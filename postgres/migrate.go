package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"agentd/migrations"
)

const versionTable = "schema_version"

// migrateLockKey is agentd's advisory lock key for migrations ("agentd" in ASCII).
const migrateLockKey int64 = 0x616765_6e7464

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, err
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return nil, err
	}
	return m, nil
}

// Migrate applies pending migrations. tern holds a Postgres advisory lock while it migrates, so
// several nodes starting together apply each migration once.
func Migrate(ctx context.Context, databaseURL string) (applied int, err error) {
	cfg, err := connConfig(databaseURL)
	if err != nil {
		return 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("postgres: cannot reach database at %s: %s", redact(cfg), rootCause(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// tern takes an advisory lock inside Migrate; this one also covers reading the version before
	// and after, so the count reported is what this call applied, not what a concurrent node did.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return 0, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey) //nolint:errcheck
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	before, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	after, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	return int(after - before), nil
}

// MigrationsCurrent reports whether every embedded migration has been applied (for /readyz).
func (db *DB) MigrationsCurrent(ctx context.Context) (bool, error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	var current int32
	err = conn.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&current)
	if err != nil {
		return false, translate(err)
	}
	files, err := migrate.FindMigrations(migrations.FS)
	if err != nil {
		return false, err
	}
	return int(current) == len(files), nil
}
