// Package pgtest gives each test its own real, migrated Postgres database. It uses the server of
// TEST_DATABASE_URL when set (its user must be allowed to create databases), else a Postgres on
// 127.0.0.1:5432 that trusts user postgres, else a private cluster it starts once per machine in
// the temp folder (shared by all test processes, serialised by localpg's lock).
//
// Isolation is by database: a template is migrated once per set of migrations and every test gets
// a copy (CREATE DATABASE ... TEMPLATE, a file copy that takes tens of milliseconds), dropped at
// cleanup. That keeps tests independent even though agentd itself uses many connections,
// transactions and LISTEN/NOTIFY, which a rolled-back transaction could not isolate.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"agentd/migrations"
	"agentd/postgres"
	"agentd/postgres/localpg"
)

var (
	once     sync.Once
	adminURL string
	tmplName string
	setupErr error
)

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		srv, err := localpg.Ensure(ctx, localpg.Options{
			DataDir:    filepath.Join(os.TempDir(), "agentd-test-pg"),
			Port:       54329,
			TryDefault: true,
		})
		if err != nil {
			setupErr = err
			return
		}
		adminURL = srv.AdminURL
	}
	hash, err := migrationsHash()
	if err != nil {
		setupErr = err
		return
	}
	tmplName = "agentd_tmpl_" + hash
	setupErr = ensureTemplate(ctx)
}

// migrationsHash names the template after the migrations postgres.Migrate applies, agentd's and
// River's, so a changed migration or a River upgrade that brings new ones gets a new template.
func migrationsHash() (string, error) {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	// A nil pool is enough to list River's bundled migrations; nothing here touches a database.
	rm, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", err
	}
	for _, v := range rm.AllVersions() {
		fmt.Fprintf(h, "river/%03d_%s", v.Version, v.Name)
		h.Write([]byte(v.SQLUp))
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate creates and migrates the template database once, across processes: an advisory
// lock on the admin connection serialises the test binaries that start together.
func ensureTemplate(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7268151)`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7268151)`) //nolint:errcheck
	var ready bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, tmplName).Scan(&ready)
	if err != nil || ready {
		return err
	}
	if err := localpg.DropDatabase(ctx, adminURL, tmplName); err != nil {
		return err
	}
	if err := localpg.CreateDatabase(ctx, adminURL, tmplName, ""); err != nil {
		return err
	}
	if _, err := postgres.Migrate(ctx, withDatabase(adminURL, tmplName)); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `UPDATE pg_database SET datistemplate = true WHERE datname = $1`, tmplName)
	return err
}

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

// NewDatabase creates a fresh migrated database for t and returns its URL. It is dropped when
// the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewEmptyDatabase creates a database without any migration applied (for migration tests).
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: no test database: %v", setupErr)
	}
	template := ""
	if migrated {
		template = tmplName // set by setup
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "agentd_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := localpg.CreateDatabase(ctx, adminURL, name, template); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := localpg.DropDatabase(ctx, adminURL, name); err != nil {
			t.Logf("pgtest: %v", err)
		}
	})
	return withDatabase(adminURL, name)
}
