package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

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

// newRiverMigrator returns the migrator of River's own tables (river_job, river_leader, ...),
// which the jobs package needs. River logs each step at Info; Migrate reports the count instead.
func newRiverMigrator(pool *pgxpool.Pool) (*rivermigrate.Migrator[pgx.Tx], error) {
	return rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
}

// Migrate applies pending migrations, agentd's and then River's, and returns how many it applied
// in all. It holds a Postgres advisory lock throughout, so several nodes starting together apply
// each migration once.
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
	// and after, and River's migrations, so the count reported is what this call applied, not
	// what a concurrent node did.
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
	river, err := migrateRiver(ctx, databaseURL)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate river: %w", err)
	}
	return int(after-before) + river, nil
}

// migrateRiver applies River's pending migrations, each in its own transaction as River requires:
// its MigrateTx, which would run them on our locked connection, is deprecated because some of
// its migrations cannot share one transaction (004 adds an enum value that 006 uses). River's
// migrator runs on a pool, so it gets a one-connection pool of its own; the caller's advisory
// lock, held on another connection, still keeps concurrent agentd migrators out.
func migrateRiver(ctx context.Context, databaseURL string) (int, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return 0, fmt.Errorf("invalid database URL: %s", describeParseError(err))
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	rm, err := newRiverMigrator(pool)
	if err != nil {
		return 0, err
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return 0, err
	}
	return len(res.Versions), nil
}

// MigrationsCurrent reports whether every embedded migration, agentd's and River's, has been
// applied (for /readyz).
func (db *DB) MigrationsCurrent(ctx context.Context) (bool, error) {
	var current int32
	err := db.Pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&current)
	if err != nil {
		return false, translate(err)
	}
	files, err := migrate.FindMigrations(migrations.FS)
	if err != nil {
		return false, err
	}
	if int(current) != len(files) {
		return false, nil
	}
	rm, err := newRiverMigrator(db.Pool)
	if err != nil {
		return false, err
	}
	res, err := rm.Validate(ctx, nil)
	if err != nil {
		return false, translate(err)
	}
	return res.OK, nil
}
