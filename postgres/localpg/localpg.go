// Package localpg finds or starts a local PostgreSQL server for development
// and tests.
//
// Ensure first (optionally) tries a server already listening on
// 127.0.0.1:5432, then a private cluster kept in Options.DataDir. If that
// cluster is not running, Ensure creates it (initdb) when needed and starts it
// with pg_ctl, detached, so it outlives the calling process and is reused by
// the next caller. Concurrent callers (several `go test` processes, or
// goroutines) are serialised with an flock on DataDir+".lock".
//
// PostgreSQL refuses to run as root. When the calling process is root, the
// server binaries are run as the "postgres" system user (or "nobody" when that
// user does not exist) through syscall.Credential; no sudo or su is needed.
package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options tells Ensure where the private cluster lives.
type Options struct {
	DataDir    string // folder of the private cluster (created if missing)
	Port       int    // TCP port on 127.0.0.1 for the private cluster
	Logger     *slog.Logger
	TryDefault bool // first try a server already listening on 127.0.0.1:5432 (user postgres, no password / trust)
	// Durable starts the private cluster with durable commits (fsync, synchronous_commit and
	// full_page_writes on, Postgres's defaults), as benchmarks must measure; without it the
	// cluster trades durability for speed (serverSettings). It applies when the cluster is
	// started, not to a server found already running.
	Durable bool
}

// Server is a running PostgreSQL server found or started by Ensure.
type Server struct {
	AdminURL string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Started  bool   // true when Ensure started it (false when reused)
}

const (
	defaultPort   = 5432
	superuser     = "postgres"
	startTimeout  = 30 * time.Second
	probeDialWait = 300 * time.Millisecond
	probeConnWait = 2 * time.Second
)

// serverSettings are passed to the postmaster with pg_ctl -o, with fastSettings (speed over
// durability: development and test data) or durableSettings (Options.Durable, benchmarks).
var serverSettings = []string{
	"-c listen_addresses=127.0.0.1",
	"-c unix_socket_directories=''", // no socket: TCP only, no path-length limits
	"-c max_connections=200",
}

// fastSettings are the settings of a cluster that is not Durable.
var fastSettings = []string{
	"-c fsync=off",
	"-c synchronous_commit=off",
	"-c full_page_writes=off",
}

// durableSettings are Postgres's own defaults, spelled out so that a configuration file cannot
// turn them off under a benchmark.
var durableSettings = []string{
	"-c fsync=on",
	"-c synchronous_commit=on",
	"-c full_page_writes=on",
}

// adminURL returns the superuser URL of a server on 127.0.0.1:port.
func adminURL(port int) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, port)
}

// DatabaseURL returns the URL of database name on the same server, as the
// same user.
func (s *Server) DatabaseURL(name string) string {
	u, err := url.Parse(s.AdminURL)
	if err != nil {
		return s.AdminURL
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// Ensure returns a running server, starting the private cluster if needed.
func Ensure(ctx context.Context, opts Options) (*Server, error) {
	o, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	log := o.Logger

	if o.TryDefault && o.Port != defaultPort {
		u := adminURL(defaultPort)
		err := probe(ctx, u)
		if err == nil {
			log.Info("localpg: using PostgreSQL already listening on 127.0.0.1:5432")
			return &Server{AdminURL: u}, nil
		}
		log.Debug("localpg: no usable server on 127.0.0.1:5432", "err", err)
	}

	// Fast path, without the lock: our cluster is already up.
	if srv, ok, err := reuse(ctx, o); ok || err != nil {
		return srv, err
	}

	unlock, err := lock(ctx, o.DataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Another process may have started it while we waited for the lock.
	if srv, ok, err := reuse(ctx, o); ok || err != nil {
		return srv, err
	}
	started, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Server{AdminURL: adminURL(o.Port), Started: started}, nil
}

// Stop stops the private cluster in opts.DataDir (pg_ctl stop -m fast) if it
// is running. It is not an error if it is not running or does not exist.
func Stop(ctx context.Context, opts Options) error {
	o, err := normalize(opts)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); err != nil {
		return nil // no cluster, nothing to stop
	}
	unlock, err := lock(ctx, o.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	if pid, _, ok := readPostmasterPID(o.DataDir); !ok || !isPostgresProcess(pid) {
		return nil
	}
	bins, err := findBinaries()
	if err != nil {
		return err
	}
	cred, _, err := runAs(o.DataDir)
	if err != nil {
		return err
	}
	out, err := run(ctx, cred, bins.pgCtl, "stop", "-D", o.DataDir, "-m", "fast", "-w", "-t", "60")
	if err != nil {
		if pid, _, ok := readPostmasterPID(o.DataDir); !ok || !isPostgresProcess(pid) {
			return nil // stopped in between
		}
		return fmt.Errorf("localpg: pg_ctl stop -D %s: %v: %s", o.DataDir, err, oneLine(out))
	}
	o.Logger.Info("localpg: stopped PostgreSQL", "datadir", o.DataDir)
	return nil
}

// CreateDatabase creates database name, copied from template ("" means the
// server's default). It is not an error if the database already exists.
func CreateDatabase(ctx context.Context, adminURL, name, template string) error {
	if name == "" {
		return errors.New("localpg: CreateDatabase: empty database name")
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("localpg: CreateDatabase %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	exists, err := databaseExists(ctx, conn, name)
	if err != nil {
		return fmt.Errorf("localpg: CreateDatabase %q: %w", name, err)
	}
	if exists {
		return nil
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	// A template that another session is connected to cannot be copied
	// (55006, object_in_use): retry for a short while.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "42P04": // duplicate_database: lost a race
			return nil
		case errors.As(err, &pgErr) && pgErr.Code == "55006" && time.Now().Before(deadline):
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return fmt.Errorf("localpg: CreateDatabase %q: %w", name, err)
			}
			continue
		}
		return fmt.Errorf("localpg: CreateDatabase %q: %w", name, err)
	}
}

// DropDatabase drops database name, closing its connections (WITH (FORCE)).
// It is not an error if the database does not exist.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	if name == "" {
		return errors.New("localpg: DropDatabase: empty database name")
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("localpg: DropDatabase %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("localpg: DropDatabase %q: %w", name, err)
	}
	return nil
}

func databaseExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	return exists, err
}

// normalize checks opts and fills in defaults.
func normalize(opts Options) (Options, error) {
	if opts.DataDir == "" {
		return opts, errors.New("localpg: Options.DataDir is empty")
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return opts, fmt.Errorf("localpg: DataDir %q: %w", opts.DataDir, err)
	}
	opts.DataDir = abs
	if opts.Port <= 0 || opts.Port > 65535 {
		return opts, fmt.Errorf("localpg: Options.Port %d is not a valid TCP port", opts.Port)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

// probe connects to url as a quick check: a short TCP dial first so that a
// closed port fails at once, then a real connection and a ping.
func probe(ctx context.Context, rawURL string) error {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	d := net.Dialer{Timeout: probeDialWait}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c.Close()

	cfg.ConnectTimeout = probeConnWait
	cctx, cancel := context.WithTimeout(ctx, probeConnWait)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(cctx)
}

// reuse reports whether the private cluster is up and answering on o.Port.
// It fails when the port is served by a cluster from another data directory.
func reuse(ctx context.Context, o Options) (*Server, bool, error) {
	u := adminURL(o.Port)
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return nil, false, fmt.Errorf("localpg: %w", err)
	}
	d := net.Dialer{Timeout: probeDialWait}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
	if err != nil {
		return nil, false, nil // nothing listening
	}
	c.Close()

	cfg.ConnectTimeout = probeConnWait
	cctx, cancel := context.WithTimeout(ctx, probeConnWait)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		// Something listens but does not let us in (yet): maybe our cluster
		// still starting, maybe a stranger. start() sorts it out.
		return nil, false, nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dir string
	if err := conn.QueryRow(cctx, "SHOW data_directory").Scan(&dir); err != nil {
		return nil, false, nil
	}
	if !sameDir(dir, o.DataDir) {
		return nil, false, fmt.Errorf("localpg: port %d is used by another PostgreSQL server (data directory %s), not by the cluster in %s: choose another port", o.Port, dir, o.DataDir)
	}
	o.Logger.Info("localpg: reusing running PostgreSQL", "port", o.Port, "datadir", o.DataDir)
	return &Server{AdminURL: u}, true, nil
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// lock takes an exclusive flock on dataDir+".lock", waiting until ctx is done.
func lock(ctx context.Context, dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	path := dataDir + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localpg: open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("localpg: lock %s: %w", path, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			f.Close()
			return nil, fmt.Errorf("localpg: waiting for lock %s: %w", path, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// start initialises (if needed) and starts the private cluster. The caller
// holds the lock and has checked that it is not answering on o.Port. started
// is false when a postmaster that was already starting up became ready.
func start(ctx context.Context, o Options) (started bool, err error) {
	log := o.Logger
	bins, err := findBinaries()
	if err != nil {
		return false, err
	}

	// A postmaster may be running already: starting up, or on another port.
	stale := false
	if pid, port, ok := readPostmasterPID(o.DataDir); ok {
		if isPostgresProcess(pid) {
			if port != 0 && port != o.Port {
				return false, fmt.Errorf("localpg: the cluster in %s is already running on port %d, not %d: stop it (pg_ctl stop -D %s) or use port %d", o.DataDir, port, o.Port, o.DataDir, port)
			}
			log.Info("localpg: PostgreSQL is running but not answering yet; waiting", "pid", pid)
			err := waitReady(ctx, o, pid)
			if err == nil || isPostgresProcess(pid) {
				return false, err
			}
			log.Info("localpg: PostgreSQL exited while we waited; starting it again", "pid", pid)
		}
		stale = true
		// postmaster.pid is stale (the server died: kill -9, machine restart).
		// The postmaster copes with a dead PID itself (and then checks that no
		// orphaned backend still uses the shared memory), but it refuses to
		// start when the PID was recycled by a live process of its user, or
		// is a zombie: remove the file in those cases.
		if pid <= 0 || processExists(pid) {
			log.Info("localpg: removing stale postmaster.pid", "pid", pid)
			if err := os.Remove(filepath.Join(o.DataDir, "postmaster.pid")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("localpg: remove stale postmaster.pid: %w", err)
			}
		}
	}

	initialized := fileExists(filepath.Join(o.DataDir, "PG_VERSION"))
	if !initialized {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return false, fmt.Errorf("localpg: create DataDir: %w", err)
		}
		if entries, err := os.ReadDir(o.DataDir); err != nil {
			return false, fmt.Errorf("localpg: read DataDir: %w", err)
		} else if len(entries) > 0 {
			return false, fmt.Errorf("localpg: DataDir %s is not empty but holds no PostgreSQL cluster (no PG_VERSION): remove it or choose another DataDir", o.DataDir)
		}
	}

	cred, who, err := runAs(o.DataDir)
	if err != nil {
		return false, err
	}
	logFile := filepath.Join(filepath.Dir(o.DataDir), filepath.Base(o.DataDir)+".log")
	if cred != nil {
		if err := prepareForUser(o.DataDir, logFile, cred, who); err != nil {
			return false, err
		}
	}

	if !initialized {
		log.Info("localpg: initdb", "datadir", o.DataDir, "user", who)
		out, err := run(ctx, cred, bins.initdb, "-D", o.DataDir, "--auth=trust", "-U", superuser,
			"-E", "UTF8", "--locale=C", "--no-sync")
		if err != nil {
			return false, fmt.Errorf("localpg: initdb -D %s (as %s): %v: %s", o.DataDir, who, err, oneLine(out))
		}
	}

	log.Info("localpg: starting PostgreSQL", "datadir", o.DataDir, "port", o.Port, "log", logFile, "user", who)
	opts := append([]string{"-p " + strconv.Itoa(o.Port)}, serverSettings...)
	if o.Durable {
		opts = append(opts, durableSettings...)
	} else {
		opts = append(opts, fastSettings...)
	}
	for attempt := 1; ; attempt++ {
		out, err := run(ctx, cred, bins.pgCtl, "start", "-D", o.DataDir, "-w",
			"-t", strconv.Itoa(int(startTimeout/time.Second)), "-l", logFile, "-o", strings.Join(opts, " "))
		if err == nil {
			break
		}
		// After a crash, orphaned backends may hold the old shared memory
		// for a moment: try again shortly.
		if stale && attempt < 3 && ctx.Err() == nil {
			log.Info("localpg: pg_ctl start failed after a crash; retrying", "err", oneLine(out))
			if err := sleep(ctx, time.Second); err == nil {
				continue
			}
		}
		msg := oneLine(out)
		if tail := logTail(logFile); tail != "" {
			msg += "; server log: " + tail
		}
		return false, fmt.Errorf("localpg: pg_ctl start -D %s on port %d (as %s): %v: %s", o.DataDir, o.Port, who, err, msg)
	}
	return true, waitReady(ctx, o, 0)
}

// waitReady waits until the cluster accepts connections on o.Port, or, when
// pid is not 0, until process pid is gone.
func waitReady(ctx context.Context, o Options, pid int) error {
	deadline := time.Now().Add(startTimeout)
	u := adminURL(o.Port)
	for {
		err := probe(ctx, u)
		if err == nil {
			return nil
		}
		if pid != 0 && !isPostgresProcess(pid) {
			return fmt.Errorf("localpg: PostgreSQL (pid %d) in %s exited before accepting connections on port %d", pid, o.DataDir, o.Port)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: PostgreSQL in %s does not accept connections on port %d after %s: %v", o.DataDir, o.Port, startTimeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("localpg: waiting for PostgreSQL: %w", err)
		}
	}
}

type binaries struct{ initdb, pgCtl string }

// findBinaries locates initdb and pg_ctl: pg_config --bindir, then the highest
// /usr/lib/postgresql/*/bin, then PATH.
func findBinaries() (binaries, error) {
	inDir := func(dir string) (binaries, bool) {
		b := binaries{initdb: filepath.Join(dir, "initdb"), pgCtl: filepath.Join(dir, "pg_ctl")}
		return b, isExecutable(b.initdb) && isExecutable(b.pgCtl)
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if b, ok := inDir(strings.TrimSpace(string(out))); ok {
				return b, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, dir := range dirs {
		if b, ok := inDir(dir); ok {
			return b, nil
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	pgCtl, err2 := exec.LookPath("pg_ctl")
	if err1 == nil && err2 == nil {
		return binaries{initdb: initdb, pgCtl: pgCtl}, nil
	}
	return binaries{}, errors.New("localpg: PostgreSQL server binaries not found: install postgresql (apt-get install postgresql)")
}

// versionOf returns the numeric version in /usr/lib/postgresql/VERSION/bin.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runAs returns the credential to run the server binaries with (nil: as the
// current user) and a name for messages. As root, an initialised cluster is
// run as the owner of its data directory; otherwise as the postgres system
// user, or nobody.
func runAs(dataDir string) (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return nil, name, nil
	}
	if st, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			if u, err := user.LookupId(strconv.Itoa(int(sys.Uid))); err == nil {
				return credential(u)
			}
			return &syscall.Credential{Uid: sys.Uid, Gid: sys.Gid}, "uid " + strconv.Itoa(int(sys.Uid)), nil
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		if u, err := user.Lookup(name); err == nil {
			return credential(u)
		}
	}
	return nil, "", errors.New("localpg: running as root and neither the postgres nor the nobody user exists: PostgreSQL cannot run as root (create a postgres user, or run as another user)")
}

func credential(u *user.User) (*syscall.Credential, string, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, "", fmt.Errorf("localpg: user %s has a non-numeric uid/gid", u.Username)
	}
	if uid == 0 {
		return nil, "", fmt.Errorf("localpg: the cluster would run as %s, which is root: PostgreSQL cannot run as root", u.Username)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, u.Username, nil
}

// prepareForUser makes DataDir and the log file belong to the user the server
// runs as, and checks that the user can reach DataDir.
func prepareForUser(dataDir, logFile string, cred *syscall.Credential, who string) error {
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		if !canTraverse(st, cred) {
			return fmt.Errorf("localpg: user %s (the PostgreSQL server cannot run as root) cannot enter directory %s (mode %v): chmod o+x it, or put DataDir elsewhere (e.g. under /tmp)", who, dir, st.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if err := chownIfNeeded(dataDir, cred); err != nil {
		return err
	}
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("localpg: create log file: %w", err)
	}
	f.Close()
	return chownIfNeeded(logFile, cred)
}

func chownIfNeeded(path string, cred *syscall.Credential) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == cred.Uid && sys.Gid == cred.Gid {
		return nil
	}
	if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return nil
}

// canTraverse reports whether the user of cred may search directory st.
func canTraverse(st fs.FileInfo, cred *syscall.Credential) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := st.Mode().Perm()
	if sys.Uid == cred.Uid {
		return perm&0o100 != 0
	}
	inGroup := sys.Gid == cred.Gid
	for _, g := range cred.Groups {
		inGroup = inGroup || g == sys.Gid
	}
	if inGroup {
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

// run runs a PostgreSQL program, as cred's user when cred is not nil, in its
// own session so that the server it may start is detached from ours.
func run(ctx context.Context, cred *syscall.Credential, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// cleanEnv is the environment without PG* variables (PGDATA, PGPORT,
// PGOPTIONS...) that would change what initdb, pg_ctl and postgres do.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// readPostmasterPID reads the PID and port of DataDir/postmaster.pid.
func readPostmasterPID(dataDir string) (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, 0, true // unreadable: treat as stale
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pid, port, true
}

// isPostgresProcess reports whether pid is a live (not zombie) postgres
// process. A stale postmaster.pid may name a PID that was recycled since.
func isPostgresProcess(pid int) bool {
	if pid <= 0 {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			return false
		}
		comm, rest := s[open+1:end], strings.Fields(s[end+1:])
		if len(rest) == 0 || rest[0] == "Z" || rest[0] == "X" {
			return false
		}
		return comm == "postgres" || comm == "postmaster"
	}
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		return false // /proc works and the process is gone
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processExists reports whether a process (maybe a zombie) has this PID.
func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// oneLine squeezes a program's output into one line.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(strings.TrimSpace(string(b))), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	if s == "" {
		s = "(no output)"
	}
	return s
}

// logTail returns the last lines of the server log, as one line.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return oneLine([]byte(strings.Join(lines, " | ")))
}
