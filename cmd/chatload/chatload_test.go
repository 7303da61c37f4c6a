package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentd/postgres/localpg"
	"agentd/postgres/pgtest"
)

// node is one `agentd serve` process of the test.
type node struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// buildAgentd builds ./cmd/agentd into the test's temporary folder.
func buildAgentd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agentd")
	out, err := exec.Command("go", "build", "-o", bin, "agentd/cmd/agentd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/agentd: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startAgentd starts one node on dbURL and waits until it is ready. The process dies with the
// test binary (Pdeathsig) and is killed and reaped by the test's cleanup, pass or fail.
func startAgentd(t *testing.T, bin, dbURL string) *node {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "AGENTD_ADDR="+addr, "AGENTD_LOG_LEVEL=warn",
		"AGENTD_STARTS_PER_MINUTE=100000", "AGENTD_CONNECTS_PER_MINUTE=100000", "AGENTD_COMMANDS_PER_SECOND=1000",
		"AGENTD_MAX_CONNS_PER_ADDR=10000")
	logf, err := os.Create(filepath.Join(t.TempDir(), "agentd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(n.done) }()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("log of the node at %s:\n%s", n.url, lastLines(string(b), 40))
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		select {
		case <-n.done:
			t.Fatalf("agentd at %s exited before it was ready", n.url)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("agentd at %s not ready in 30 s", n.url)
		}
	}
}

// kill is kill -9, and waits until the process is reaped.
func (n *node) kill() {
	n.once.Do(func() {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// addAgents creates load000… with `agentd user add`, as an operator would.
func addAgents(t *testing.T, bin, dbURL string, n, capacity int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("load%03d", i)
		cmd := exec.Command(bin, "user", "add", "--username", name, "--password", "password-"+name, "--role", "agent",
			"--capacity", fmt.Sprint(capacity))
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "AGENTD_LOG_LEVEL=warn")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("agentd user add %s: %v\n%s", name, err, out)
		}
	}
}

// TestTwoNodesFaults is the CI run of issue 10: a short steady chat on two agentd processes
// sharing one database, with customers and agents on both, and during it the LISTEN
// connections terminated, a lost ack (a customer drops its socket right after a send and sends
// the same id again after the reconnect) and one node killed with SIGKILL (its customers and
// agents move to the other node and resume). The invariant checker must find nothing: every
// acknowledged message stored once at its index, contiguous indexes, every party shown every
// event in order without a gap or a repeat.
func TestTwoNodesFaults(t *testing.T) {
	bin := buildAgentd(t)
	dbURL := pgtest.NewDatabase(t)
	const customers, agents = 16, 4
	addAgents(t, bin, dbURL, agents, customers)
	a, b := startAgentd(t, bin, dbURL), startAgentd(t, bin, dbURL)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var listenersKilled int
	var listenQueries []string
	cfg := Config{
		Scenario: "steady", Nodes: []string{a.url, b.url}, Customers: customers, Agents: agents, AgentPrefix: "load",
		PasswordOf: func(n string) string { return "password-" + n },
		Rates:      []float64{32, 32, 32}, AgentShare: 0.5, Step: 1500 * time.Millisecond, Size: 200, Service: "default",
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Setup: time.Minute, Drain: 30 * time.Second,
		DatabaseURL: dbURL,
		Faults: []Fault{
			{At: 700 * time.Millisecond, Name: "terminate the LISTEN connections", Do: func(ctx context.Context, _ *Run) error {
				rows, err := pool.Query(ctx, `SELECT query, pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND query ILIKE 'LISTEN%'`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var q string
					var ok bool
					if err := rows.Scan(&q, &ok); err != nil {
						return err
					}
					if ok {
						listenersKilled++
						listenQueries = append(listenQueries, q)
					}
				}
				return rows.Err()
			}},
			{At: 1200 * time.Millisecond, Name: "lost ack", Do: LoseAck(3)},
			{At: 1300 * time.Millisecond, Name: "lost ack", Do: LoseAck(4)},
			{At: 2200 * time.Millisecond, Name: "kill -9 the second node", Do: func(context.Context, *Run) error { b.kill(); return nil }},
		},
	}
	r, rep, err := execute(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printReport(&sb, rep)
	t.Log(sb.String())
	t.Logf("terminated %d LISTEN connections: %q", listenersKilled, listenQueries)
	if listenersKilled < 2 {
		t.Errorf("terminated %d LISTEN connections, want one per node at least", listenersKilled)
	}
	for _, v := range rep.Violations {
		t.Error(v)
	}
	if !rep.Drained || rep.Unacked > 0 {
		t.Errorf("not drained: %d messages unanswered, or a party behind what is stored", rep.Unacked)
	}
	// The faults happened to the clients: the lost acks were resent, the second node's
	// customers came back on the first.
	var resent, acked int
	for _, s := range r.log.snapshot() {
		if s.Attempts > 1 && !s.Acked.IsZero() {
			resent++
		}
		if !s.Acked.IsZero() {
			acked++
		}
	}
	if resent < 2 {
		t.Errorf("%d messages were resent and acknowledged, want at least the 2 lost acks", resent)
	}
	if acked < customers*2 {
		t.Errorf("only %d messages acknowledged", acked)
	}
	for _, c := range r.customers {
		if c.nodes[c.node] != a.url {
			t.Errorf("customer %d ended on %s, not on the surviving node", c.n, c.nodes[c.node])
		}
	}

	// The checker is not blind: the same log with one acknowledged index moved, and one
	// customer's surfaced events missing one, must be reported.
	r.log.mu.Lock()
	for _, s := range r.log.order {
		if !s.Acked.IsZero() {
			s.Index++
			break
		}
	}
	for _, v := range r.log.views {
		if strings.HasPrefix(v.Party, "customer") && len(v.Shown) > 2 {
			v.Shown = append(v.Shown[:1], v.Shown[2:]...)
			break
		}
	}
	r.log.mu.Unlock()
	v, err := check(ctx, pool, r.log, true)
	if err != nil {
		t.Fatal(err)
	}
	var moved, gap bool
	for _, s := range v {
		moved = moved || strings.Contains(s, "acknowledged at index")
		gap = gap || strings.Contains(s, "surfaced")
	}
	if !moved || !gap {
		t.Errorf("the checker missed a tampered log: %q", v)
	}
}

// noOrphans fails the test when a process whose command line contains pattern (an agentd
// binary's or a cluster's folder) is still running after every cleanup registered after it:
// cleanups run last registered first, so call it before starting what it guards.
func noOrphans(t *testing.T, pattern string) {
	t.Helper()
	t.Cleanup(func() {
		out, err := exec.Command("pgrep", "-a", "-f", pattern).Output()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("processes left running after the test (%s):\n%s", pattern, out)
		}
	})
}

// privateCluster starts a Postgres cluster of the test's own (fsync off: fast, this is not a
// measurement) in a fresh folder on a free port, with one database, and stops it when the test
// ends, pass or fail. It returns the database's URL and the options to stop and start it again.
func privateCluster(t *testing.T) (string, localpg.Options) {
	t.Helper()
	dir, err := os.MkdirTemp("", "chatload-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server runs as postgres when the test is root
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	p, _ := strconv.Atoi(port)
	opts := localpg.Options{DataDir: filepath.Join(dir, "data"), Port: p}
	noOrphans(t, opts.DataDir)
	ctx := context.Background()
	t.Cleanup(func() {
		if err := localpg.Stop(context.Background(), opts); err != nil {
			t.Errorf("stop the private cluster: %v", err)
		}
	})
	srv, err := localpg.Ensure(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := localpg.CreateDatabase(ctx, srv.AdminURL, "chatload", ""); err != nil {
		t.Fatal(err)
	}
	return srv.DatabaseURL("chatload"), opts
}

// errorCount is how many errors the run's clients recorded so far.
func errorCount(r *Run) int {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	n := 0
	for _, v := range r.log.errors {
		n += v
	}
	return n
}

// TestPostgresRestart restarts the database under two agentd processes mid-load: Postgres is
// stopped (fast shutdown: every connection ends), the clients see their commands fail as
// unavailable or their sockets closed and retry, and once the clients have seen it Postgres
// is started again. Then everything must drain and the checker find nothing: no acknowledged
// message lost or stored twice, no party with a gap or a repeat.
func TestPostgresRestart(t *testing.T) {
	bin := buildAgentd(t)
	noOrphans(t, bin)
	dbURL, opts := privateCluster(t)
	const customers, agents = 16, 4
	a := startAgentd(t, bin, dbURL) // migrates the database
	b := startAgentd(t, bin, dbURL)
	addAgents(t, bin, dbURL, agents, customers)

	var errsBefore, errsDuring int
	var down time.Duration
	cfg := Config{
		Scenario: "steady", Nodes: []string{a.url, b.url}, Customers: customers, Agents: agents, AgentPrefix: "load",
		PasswordOf: func(n string) string { return "password-" + n },
		Rates:      []float64{32, 32, 32, 32}, AgentShare: 0.5, Step: 1500 * time.Millisecond, Size: 200, Service: "default",
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Setup: time.Minute, Drain: 45 * time.Second,
		DatabaseURL: dbURL,
		Faults: []Fault{{At: time.Second, Name: "restart Postgres", Do: func(ctx context.Context, r *Run) error {
			errsBefore = errorCount(r)
			start := time.Now()
			if err := localpg.Stop(ctx, opts); err != nil {
				return err
			}
			// Down until the clients have felt it: commands refused or sockets lost.
			err := waitUntil(ctx, 20*time.Second, func() bool { return errorCount(r) > errsBefore })
			errsDuring = errorCount(r) - errsBefore
			if _, serr := localpg.Ensure(context.Background(), opts); serr != nil {
				return serr
			}
			down = time.Since(start)
			if err != nil {
				return fmt.Errorf("no client saw an error while Postgres was down: %w", err)
			}
			return nil
		}}},
	}
	r, rep, err := execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printReport(&sb, rep)
	t.Log(sb.String())
	t.Logf("Postgres down for %s; %d client errors while it was down", down.Round(time.Millisecond), errsDuring)
	for _, v := range rep.Violations {
		t.Error(v)
	}
	if !rep.Drained || rep.Unacked > 0 {
		t.Errorf("not drained after the restart: %d messages unanswered, or a party behind what is stored", rep.Unacked)
	}
	if errsDuring == 0 {
		t.Error("the clients saw no error while Postgres was down")
	}
	for _, n := range []*node{a, b} {
		select {
		case <-n.done:
			t.Errorf("agentd at %s exited while Postgres restarted", n.url)
		default:
			if resp, err := http.Get(n.url + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("agentd at %s not ready after Postgres came back: %v", n.url, err)
			} else {
				resp.Body.Close()
			}
		}
	}
	var unavailable int
	for k, n := range rep.Errors {
		if strings.Contains(k, "unavailable") {
			unavailable += n
		}
	}
	if unavailable == 0 || rep.CustomerResends == 0 {
		t.Errorf("%d commands answered unavailable and %d resent: the outage did not reach the clients' retries", unavailable, rep.CustomerResends)
	}
	var acked, failed int
	for _, s := range r.log.snapshot() {
		if !s.Acked.IsZero() {
			acked++
		}
		if s.Err != "" {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d commands ended in an error instead of being retried until Postgres was back", failed)
	}
	if acked < customers*2 {
		t.Errorf("only %d messages acknowledged", acked)
	}
}

// slowDropped sums agentd_slow_connections_dropped_total over the nodes that answer.
func slowDropped(ctx context.Context, nodes []string) int {
	n := 0
	for _, base := range nodes {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "agentd_slow_connections_dropped_total "); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				n += int(f)
			}
		}
		resp.Body.Close()
	}
	return n
}

// TestSlowAgent has one agent's console stop reading its socket mid-load, the TCP connection
// left open (a frozen tab, on a narrow link so the buffers fill in seconds). The server must
// drop it as a slow consumer (CloseTooSlow, counted in agentd_slow_connections_dropped_total)
// without holding anyone else up: every message of the other chats still delivered, within a
// generous bound (a sanity check, not a measurement). The agent then reads again, finds its
// socket closed, reconnects and catches up; the run drains and the checker finds nothing.
func TestSlowAgent(t *testing.T) {
	bin := buildAgentd(t)
	noOrphans(t, bin)
	dbURL := pgtest.NewDatabase(t)
	const customers, agents, slow = 16, 4, 1
	addAgents(t, bin, dbURL, agents, customers)
	a, b := startAgentd(t, bin, dbURL), startAgentd(t, bin, dbURL)
	nodes := []string{a.url, b.url}

	var dropped int
	var faultAt time.Time
	var connectsAtDrop int64
	cfg := Config{
		Scenario: "steady", Nodes: nodes, Customers: customers, Agents: agents, AgentPrefix: "load",
		PasswordOf: func(n string) string { return "password-" + n },
		// 4,000-byte messages: the frozen console's share (a quarter of the chats, some 45 KB/s)
		// fills the server's send buffer (autotuned to about 1 MB on loopback whatever the
		// client's window) in 10-13 s; then its write times out (10 s). The load goes on for 27 s,
		// so the agent reconnects and catches up under it.
		Rates: []float64{32, 32, 32, 32, 32, 32, 32, 32, 32}, AgentShare: 0.5, Step: 3 * time.Second, Size: 4000, Service: "default",
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Setup: time.Minute, Drain: 30 * time.Second,
		DatabaseURL: dbURL,
		Faults: []Fault{{At: 500 * time.Millisecond, Name: "slow agent socket", Do: func(ctx context.Context, r *Run) error {
			faultAt = time.Now()
			before := slowDropped(ctx, nodes)
			ag, err := SlowAgent(ctx, r, slow, func(ctx context.Context) bool {
				dropped = slowDropped(ctx, nodes) - before
				return dropped > 0
			}, 40*time.Second)
			connectsAtDrop = ag.connects.Load()
			return err
		}}},
	}
	r, rep, err := execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printReport(&sb, rep)
	t.Log(sb.String())
	for _, m := range rep.Marks {
		t.Logf("%+v", m)
	}
	for _, v := range rep.Violations {
		t.Error(v)
	}
	if !rep.Drained || rep.Unacked > 0 {
		t.Errorf("not drained: %d messages unanswered, or a party behind what is stored", rep.Unacked)
	}
	if dropped != 1 {
		t.Errorf("%d connections dropped as too slow, want the one that stopped reading", dropped)
	}
	ag := r.agents[slow]
	if ag.connects.Load() <= connectsAtDrop {
		t.Errorf("agent %s did not reconnect after it was dropped", ag.name)
	}
	// Everyone else kept going: every message of the other agents' chats, from the fault on,
	// delivered, and none later than a generous bound.
	slowChats := map[string]bool{}
	for iid := range ag.chats {
		slowChats[iid] = true
	}
	var others []time.Duration
	for _, s := range r.log.snapshot() {
		if s.Kind != "message" || slowChats[s.Session] || s.Sched.Before(faultAt) {
			continue
		}
		if s.Delivered.IsZero() {
			t.Errorf("%s message %s in chat %s, not the slow agent's, never delivered", s.From, s.ID, s.Session)
			continue
		}
		others = append(others, s.Delivered.Sub(s.Sched))
	}
	sort.Slice(others, func(i, j int) bool { return others[i] < others[j] })
	if len(others) == 0 {
		t.Fatal("no message of the other chats after the fault")
	}
	p99 := others[len(others)*99/100]
	t.Logf("the other chats: %d messages after the fault, delivery p99 %s, max %s (loaded shared machine)", len(others), p99, others[len(others)-1])
	if p99 > 5*time.Second {
		t.Errorf("delivery p99 of the other chats %s while one agent stalled: the slow socket held others up", p99)
	}
}
