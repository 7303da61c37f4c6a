package localpg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testDir makes a temporary folder that the unprivileged server user can
// traverse when the test runs as root (t.TempDir makes 0700 folders).
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newOptions returns options for a fresh private cluster and stops that
// cluster when the test ends.
func newOptions(t *testing.T) Options {
	t.Helper()
	opts := Options{
		DataDir: filepath.Join(testDir(t), "pgdata"),
		Port:    freePort(t),
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := Stop(ctx, opts); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return opts
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func selectOne(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "select 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("select 1 on %s: %d, %v", url, n, err)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := testContext(t)
	opts := newOptions(t)

	begin := time.Now()
	srv, err := Ensure(ctx, opts)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Logf("first Ensure (initdb + start) took %s", time.Since(begin))
	if !srv.Started {
		t.Errorf("Started = false on a fresh cluster")
	}
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", opts.Port)
	if srv.AdminURL != want {
		t.Errorf("AdminURL = %q, want %q", srv.AdminURL, want)
	}
	if got, want := srv.DatabaseURL("app_db"), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app_db?sslmode=disable", opts.Port); got != want {
		t.Errorf("DatabaseURL = %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(opts.DataDir), "pgdata.log")); err != nil || fi.Size() == 0 {
		t.Errorf("server log next to DataDir: %v", err)
	}

	for i := range 2 { // idempotent
		if err := CreateDatabase(ctx, srv.AdminURL, "app_db", ""); err != nil {
			t.Fatalf("CreateDatabase #%d: %v", i+1, err)
		}
	}
	selectOne(t, ctx, srv.DatabaseURL("app_db"))

	// A copy of app_db as template, while nobody is connected to it.
	conn, err := pgx.Connect(ctx, srv.DatabaseURL("app_db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "create table marker (id int); insert into marker values (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := CreateDatabase(ctx, srv.AdminURL, "copy-of app", "app_db"); err != nil {
		t.Fatalf("CreateDatabase from template: %v", err)
	}
	conn, err = pgx.Connect(ctx, srv.DatabaseURL("copy-of app"))
	if err != nil {
		t.Fatalf("connect to copy: %v", err)
	}
	var id int
	if err := conn.QueryRow(ctx, "select id from marker").Scan(&id); err != nil || id != 42 {
		t.Errorf("copied marker = %d, %v", id, err)
	}
	// Drop while connected (WITH (FORCE)), then again (no error if missing).
	for i := range 2 {
		if err := DropDatabase(ctx, srv.AdminURL, "copy-of app"); err != nil {
			t.Fatalf("DropDatabase #%d: %v", i+1, err)
		}
	}
	conn.Close(ctx)

	// Ensure again: reused, not started.
	again, err := Ensure(ctx, opts)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if again.Started || again.AdminURL != srv.AdminURL {
		t.Errorf("second Ensure = %+v, want reuse of %s", again, srv.AdminURL)
	}

	// Concurrent Ensure on a running cluster.
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := Ensure(ctx, opts)
			if err == nil && s.Started {
				err = fmt.Errorf("Started = true for a running cluster")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Ensure: %v", err)
		}
	}

	// The same DataDir on another port: a clear error, not a second server.
	other := opts
	other.Port = freePort(t)
	if _, err := Ensure(ctx, other); err == nil || !strings.Contains(err.Error(), strconv.Itoa(opts.Port)) {
		t.Errorf("Ensure on another port: err = %v, want one naming port %d", err, opts.Port)
	}

	// TryDefault with nothing usable on 5432 falls through to our cluster quickly.
	td := opts
	td.TryDefault = true
	begin = time.Now()
	s, err := Ensure(ctx, td)
	if err != nil {
		t.Fatalf("Ensure with TryDefault: %v", err)
	}
	if !defaultUsable(ctx) {
		if s.AdminURL != srv.AdminURL {
			t.Errorf("TryDefault AdminURL = %s, want private %s", s.AdminURL, srv.AdminURL)
		}
		if d := time.Since(begin); d > 3*time.Second {
			t.Errorf("TryDefault fall-through took %s", d)
		}
	}

	if err := Stop(ctx, opts); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := Stop(ctx, opts); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := probe(ctx, srv.AdminURL); err == nil {
		t.Errorf("server still answers after Stop")
	}
}

func defaultUsable(ctx context.Context) bool {
	return probe(ctx, adminURL(defaultPort)) == nil
}

// TestConcurrentColdStart: several callers at once on a fresh DataDir; exactly
// one starts the cluster. Then restart after Stop, and after a crash that
// left a stale postmaster.pid.
func TestConcurrentColdStart(t *testing.T) {
	ctx := testContext(t)
	opts := newOptions(t)

	const n = 4
	var wg sync.WaitGroup
	results := make([]*Server, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = Ensure(ctx, opts) })
	}
	wg.Wait()
	started := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ensure #%d: %v", i, errs[i])
		}
		if results[i].Started {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d callers started the cluster, want 1", started)
	}
	selectOne(t, ctx, results[0].AdminURL)

	// Stopped cluster: started again, without initdb.
	if err := Stop(ctx, opts); err != nil {
		t.Fatal(err)
	}
	srv, err := Ensure(ctx, opts)
	if err != nil || !srv.Started {
		t.Fatalf("Ensure after Stop = %+v, %v; want Started", srv, err)
	}

	// A crash (kill -9 of the postmaster) leaves postmaster.pid behind:
	// Ensure must start the cluster again.
	pid, _, ok := readPostmasterPID(opts.DataDir)
	if !ok || !isPostgresProcess(pid) {
		t.Fatalf("postmaster.pid: pid %d, ok %v; want a live postgres", pid, ok)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv, err = Ensure(ctx, opts)
	if err != nil || !srv.Started {
		t.Fatalf("Ensure after kill -9 = %+v, %v; want Started", srv, err)
	}
	selectOne(t, ctx, srv.AdminURL)

	// Stale postmaster.pid files naming a live process that is not postgres
	// (a recycled PID: here our own process), a PID that no longer exists,
	// and garbage.
	deadPID := func() int {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		return cmd.Process.Pid
	}()
	for _, pid := range []string{strconv.Itoa(os.Getpid()), strconv.Itoa(deadPID), "garbage"} {
		if err := Stop(ctx, opts); err != nil {
			t.Fatal(err)
		}
		stale := fmt.Sprintf("%s\n%s\n0\n%d\n\n127.0.0.1\n0 0\nready\n", pid, opts.DataDir, opts.Port)
		pidFile := filepath.Join(opts.DataDir, "postmaster.pid")
		if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		chownLike(t, pidFile, opts.DataDir)
		srv, err = Ensure(ctx, opts)
		if err != nil || !srv.Started {
			t.Fatalf("Ensure with stale postmaster.pid (pid %s) = %+v, %v; want Started", pid, srv, err)
		}
		selectOne(t, ctx, srv.AdminURL)
	}
}

// chownLike gives path the owner of ref (the server's user when run as root).
func chownLike(t *testing.T, path, ref string) {
	t.Helper()
	st, err := os.Stat(ref)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Lchown(path, int(sys.Uid), int(sys.Gid)); err != nil {
		t.Fatal(err)
	}
}

func TestStopWithoutCluster(t *testing.T) {
	opts := Options{DataDir: filepath.Join(testDir(t), "none"), Port: 1}
	if err := Stop(context.Background(), opts); err != nil {
		t.Fatalf("Stop on a missing cluster: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []Options{{Port: 5000}, {DataDir: "x", Port: 0}, {DataDir: "x", Port: 70000}} {
		_, err := Ensure(ctx, opts)
		if err == nil || !strings.HasPrefix(err.Error(), "localpg: ") {
			t.Errorf("Ensure(%+v) err = %v, want a localpg error", opts, err)
		}
	}
}

func TestNotEmptyDataDir(t *testing.T) {
	opts := newOptions(t)
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.DataDir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Ensure(testContext(t), opts)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a 'not empty' error", err)
	}
}

func TestUntraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only as root")
	}
	opts := newOptions(t)
	parent := filepath.Dir(opts.DataDir)
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Ensure(testContext(t), opts)
	if err == nil || !strings.Contains(err.Error(), parent) {
		t.Fatalf("err = %v, want one naming %s", err, parent)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans several lines: %q", err)
	}
}

func TestDatabaseURL(t *testing.T) {
	s := &Server{AdminURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"}
	if got, want := s.DatabaseURL("a b"), "postgres://postgres@127.0.0.1:5432/a%20b?sslmode=disable"; got != want {
		t.Errorf("DatabaseURL = %q, want %q", got, want)
	}
}

// TestDurable: a Durable cluster commits durably (fsync, synchronous_commit, full_page_writes
// on), what benchmarks measure; the default cluster does not.
func TestDurable(t *testing.T) {
	ctx := testContext(t)
	for _, durable := range []bool{true, false} {
		opts := newOptions(t)
		opts.Durable = durable
		srv, err := Ensure(ctx, opts)
		if err != nil {
			t.Fatalf("Ensure (durable %v): %v", durable, err)
		}
		conn, err := pgx.Connect(ctx, srv.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
			var v string
			if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "on", false: "off"}[durable]; v != want {
				t.Errorf("durable %v: %s = %s, want %s", durable, name, v, want)
			}
		}
		conn.Close(ctx)
		if err := Stop(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
}
