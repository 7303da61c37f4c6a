package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"agentd/postgres"
	"agentd/postgres/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMigrateConcurrently starts several migrations of one empty database at once, as several
// nodes starting together do: the advisory lock makes exactly one apply each migration, agentd's
// and River's.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { applied[i], errs[i] = postgres.Migrate(ctx, url) })
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("migration %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var version, riverVersions, riverTables, services int
	if err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM river_migration WHERE line = 'main'`).Scan(&riverVersions); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
		AND tablename IN ('river_migration', 'river_job', 'river_leader', 'river_queue')`).Scan(&riverTables); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM services WHERE name = 'default'`).Scan(&services); err != nil {
		t.Fatal(err)
	}
	if riverVersions == 0 || riverTables != 4 || total != version+riverVersions || services != 1 {
		t.Fatalf("applied %d in total, schema version %d, River versions %d, River tables %d of 4, default services %d",
			total, version, riverVersions, riverTables, services)
	}
	// Running it again applies nothing.
	if n, err := postgres.Migrate(ctx, url); err != nil || n != 0 {
		t.Fatalf("second run applied %d, %v", n, err)
	}
	db, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ok, err := db.MigrationsCurrent(ctx); err != nil || !ok {
		t.Fatalf("MigrationsCurrent = %v, %v", ok, err)
	}
	// A River migration missing is pending too: /readyz must not pass a node whose River tables
	// are behind.
	if _, err := conn.Exec(ctx, `DELETE FROM river_migration WHERE line = 'main' AND version = (SELECT max(version) FROM river_migration)`); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.MigrationsCurrent(ctx); err != nil || ok {
		t.Fatalf("MigrationsCurrent with a River migration pending = %v, %v", ok, err)
	}
}
