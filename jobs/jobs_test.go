package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"agentd/jobs"
	"agentd/postgres"
	"agentd/postgres/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore stands in for the SQL (tested against Postgres in package postgres and end to end in
// cmd/agentd), so these tests see exactly which prunes River ran and with what.
type fakeStore struct {
	mu        sync.Mutex
	commands  int
	sessions  int
	retention time.Duration
	result    int64
	err       error
}

func (s *fakeStore) PruneCommands(_ context.Context, olderThan time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands++
	s.retention = olderThan
	return s.result, s.err
}

func (s *fakeStore) PruneWebSessions(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions++
	return 0, s.err
}

func (s *fakeStore) PruneEvents(context.Context, time.Duration) (int64, error) { return 0, s.err }

func (s *fakeStore) counts() (commands, sessions int, retention time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands, s.sessions, s.retention
}

// logBuffer collects log lines written by River's goroutines and the test's.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testBundle struct {
	pool  *pgxpool.Pool
	store *fakeStore
	logs  *logBuffer
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return &testBundle{pool: db.Pool, store: &fakeStore{}, logs: &logBuffer{}}
}

// start runs a Runner until the test ends; Stop runs before the pool closes, as in Main.Close.
func (b *testBundle) start(t *testing.T, cfg jobs.Config) *jobs.Runner {
	t.Helper()
	r, err := jobs.New(jobs.Deps{
		Pool:   b.pool,
		Store:  b.store,
		Logger: slog.New(slog.NewTextHandler(b.logs, nil)), // Info and up, as in production
		Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunner(t *testing.T) {
	t.Parallel()

	t.Run("OK_PrunesOnStartAndEveryInterval", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.store.result = 3
		b.start(t, jobs.Config{CommandRetention: 3 * time.Hour, PruneInterval: 200 * time.Millisecond})
		waitFor(t, "two rounds of both prunes", func() bool {
			c, s, _ := b.store.counts()
			return c >= 2 && s >= 2
		})
		if _, _, retention := b.store.counts(); retention != 3*time.Hour {
			t.Fatalf("PruneCommands got retention %v, want 3h", retention)
		}
		logs := b.logs.String()
		if !strings.Contains(logs, `level=INFO msg="pruned rows" component=jobs table=party_commands count=3`) {
			t.Fatalf("no Info line for the pruned commands in:\n%s", logs)
		}
		// Nothing pruned, nothing said; and River's own Info lines are Debug now.
		if strings.Contains(logs, "table=web_sessions") || strings.Contains(logs, "River client started") {
			t.Fatalf("unexpected lines in:\n%s", logs)
		}
	})

	t.Run("ErrStoreLogged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.store.err = errors.New("database on fire")
		b.start(t, jobs.Config{PruneInterval: time.Hour})
		waitFor(t, "the failure logged", func() bool {
			return strings.Contains(b.logs.String(), `level=ERROR msg="job failed" component=jobs job_kind=prune_party_commands`)
		})
		if c, _, retention := b.store.counts(); c != 1 || retention != jobs.DefaultConfig.CommandRetention {
			t.Fatalf("%d prunes with retention %v; want 1 with the default %v", c, retention, jobs.DefaultConfig.CommandRetention)
		}
	})

	t.Run("OK_StopWithoutStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r, err := jobs.New(jobs.Deps{Pool: b.pool, Store: b.store, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		// Main.Close stops the runner also when Run failed before starting it.
		if err := r.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrMissingDeps", func(t *testing.T) {
		t.Parallel()
		if _, err := jobs.New(jobs.Deps{Logger: slog.New(slog.DiscardHandler)}); err == nil {
			t.Fatal("New without a pool and store: no error")
		}
	})
}
