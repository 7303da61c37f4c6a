package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentd/postgres"
	"agentd/postgres/localpg"
)

// TestIdleWSHelper is not a test: it is the child process of the idle websocket ceiling
// (measureIdleWS), started by the bench with CHATLOAD_IDLE_WS_HELPER=1, serving until killed.
func TestIdleWSHelper(t *testing.T) {
	if os.Getenv("CHATLOAD_IDLE_WS_HELPER") != "1" {
		t.Skip("the idle websocket ceiling's child process (make bench)")
	}
	if err := serveIdleWS(); err != nil {
		t.Fatal(err)
	}
}

func idleHelperCommand() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleWSHelper$")
	cmd.Env = append(os.Environ(), "CHATLOAD_IDLE_WS_HELPER=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// benchResult is everything `make bench` measured, for the doc and the JSON.
type benchResult struct {
	Started   time.Time  `json:"started"`
	Took      float64    `json:"seconds"`
	Machine   string     `json:"machine"`
	Settings  string     `json:"settings"`
	LoadStart string     `json:"load_average_before"`
	LoadEnd   string     `json:"load_average_after"`
	Inserts   []Ceiling  `json:"inserts"`
	Fsync     Ceiling    `json:"fsync"`
	Echo      Ceiling    `json:"echo"`
	Fanout    Ceiling    `json:"fanout"`
	IdleWS    Ceiling    `json:"idle_websocket"`
	Model     Model      `json:"model"`
	Ramp      *Report    `json:"ramp"`
	Reconnect *Report    `json:"reconnect"`
	Starts    *Report    `json:"starts"`
	StormN    int        `json:"reconnect_sessions"`
	StartedN  int        `json:"sessions_started_on_one_node"`
	StormCap  int        `json:"reconnect_agent_capacity"`
	Problems  []string   `json:"problems,omitempty"`
	Config    benchSizes `json:"config"`
}

type benchSizes struct {
	CeilingSecs float64   `json:"ceiling_seconds"`
	Rates       []float64 `json:"ramp_rates"`
	Step        string    `json:"ramp_step"`
	Customers   int       `json:"ramp_customers"`
	Agents      int       `json:"ramp_agents"`
	Storm       int       `json:"reconnect_sessions"`
	StartRates  []float64 `json:"start_rates"`
	StartStep   string    `json:"start_step"`
	IdleConns   int       `json:"idle_websockets"`
}

func envFloats(t *testing.T, name, def string) []float64 {
	var out []float64
	for _, s := range splitList(envOr(name, def)) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
	return out
}

func envInt(t *testing.T, name string, def int) int {
	v, err := strconv.Atoi(envOr(name, strconv.Itoa(def)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func envDuration(t *testing.T, name, def string) time.Duration {
	d, err := time.ParseDuration(envOr(name, def))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// addAgentsNamed is addAgents with another username prefix (PREFIX000…, password-PREFIX000…).
func addAgentsNamed(t *testing.T, bin, dbURL, prefix string, n, capacity int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("%s%03d", prefix, i)
		cmd := exec.Command(bin, "user", "add", "--username", name, "--password", "password-"+name, "--role", "agent",
			"--capacity", fmt.Sprint(capacity))
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "AGENTD_LOG_LEVEL=warn")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("agentd user add %s: %v\n%s", name, err, out)
		}
	}
}

// TestBench is `make bench` (AGENTD_BENCH=1): on a private Durable cluster it measures the
// ceilings (ceiling.go), a ramp of the steady scenario on two agentd nodes, a reconnect storm, a
// session-start storm onto one fresh node (its memory per started connection and how many
// connections it holds), and writes docs/benchmarks.md's "make bench" section and
// docs/bench-latency.svg. It asserts nothing about speed; an invariant violation fails it.
// Sizes: AGENTD_BENCH_CEILING_SECS (2), _RATES (400,800,1200,1600,2000; past 2,000 the agents would pass the console's 20 frames a second), _STEP (6s),
// _CUSTOMERS (100), _AGENTS (20), _STORM (5000 sessions), _START_RATES (400,800,1600,3200),
// _START_STEP (2s), _IDLE (2000 websockets), _SKIP (scenarios left out: steady, reconnect, starts), _PORT (55441), _PGDATA, _DOC and _SVG (the files
// written), _JSON (a file for everything as JSON).
func TestBench(t *testing.T) {
	if os.Getenv("AGENTD_BENCH") != "1" {
		t.Skip("a benchmark: make bench (AGENTD_BENCH=1)")
	}
	ctx := context.Background()
	res := &benchResult{Started: time.Now().UTC(), LoadStart: loadAvg(), Machine: machine()}
	sz := benchSizes{
		CeilingSecs: float64(envInt(t, "AGENTD_BENCH_CEILING_SECS", 2)),
		Rates:       envFloats(t, "AGENTD_BENCH_RATES", "400,800,1200,1600,2000"),
		Step:        envOr("AGENTD_BENCH_STEP", "6s"),
		Customers:   envInt(t, "AGENTD_BENCH_CUSTOMERS", 100),
		Agents:      envInt(t, "AGENTD_BENCH_AGENTS", 20),
		Storm:       envInt(t, "AGENTD_BENCH_STORM", 5000),
		StartRates:  envFloats(t, "AGENTD_BENCH_START_RATES", "400,800,1600,3200"),
		StartStep:   envOr("AGENTD_BENCH_START_STEP", "2s"),
		IdleConns:   envInt(t, "AGENTD_BENCH_IDLE", 2000),
	}
	res.Config = sz
	step, startStep := envDuration(t, "AGENTD_BENCH_STEP", "6s"), envDuration(t, "AGENTD_BENCH_START_STEP", "2s")

	port := envInt(t, "AGENTD_BENCH_PORT", 55441)
	pgdata := envOr("AGENTD_BENCH_PGDATA", filepath.Join(os.TempDir(), "agentd-bench-pg"))
	srv, settings := durableCluster(t, port, pgdata)
	res.Settings = strings.Join(settings, ", ")
	name := fmt.Sprintf("chatbench_%d", time.Now().UnixNano())
	if err := localpg.CreateDatabase(ctx, srv.AdminURL, name, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = localpg.DropDatabase(context.Background(), srv.AdminURL, name) })
	dbURL := srv.DatabaseURL(name)

	bin := buildAgentd(t)
	a := startAgentd(t, bin, dbURL) // migrates the database
	b := startAgentd(t, bin, dbURL)
	addAgents(t, bin, dbURL, sz.Agents, (sz.Customers+sz.Agents-1)/sz.Agents)
	stormAgents := (sz.Storm + 49) / 50 // an agent's capacity is at most 50
	addAgentsNamed(t, bin, dbURL, "storm", stormAgents, (sz.Storm+stormAgents-1)/stormAgents)

	// Ceilings, with the nodes idle.
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 20
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pgCPU := postgresCPU(ctx, t, db)
	cd := time.Duration(sz.CeilingSecs * float64(time.Second))
	for _, rows := range []int{1, 10, 100} {
		for _, conns := range []int{1, 4, 16} {
			c, err := measureInserts(ctx, db, rows, conns, cd, pgCPU)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.0f rows/s, %.0f commits/s, commit p99 %.2f ms, CPU %.3f ms/row", c.Name, c.Rate, c.Commits, c.Latency.P99, c.CPUPerOp*1000)
			res.Inserts = append(res.Inserts, c)
		}
	}
	if res.Fsync, err = measureFsync(ctx, pgdata, 2); err != nil {
		res.Problems = append(res.Problems, "fsync ceiling: "+err.Error())
	}
	if res.Echo, err = measureEcho(16, 200, cd+time.Second); err != nil {
		t.Fatal(err)
	}
	if res.Fanout, err = measureFanout(16, 200, cd+time.Second); err != nil {
		t.Fatal(err)
	}
	if res.IdleWS, err = measureIdleWS(idleHelperCommand(), sz.IdleConns); err != nil {
		res.Problems = append(res.Problems, "idle websocket ceiling: "+err.Error())
	}
	t.Logf("fdatasync %.0f/s; echo %.0f/s p99 %.2f ms; fan-out %.0f/s p99 %.2f ms; idle websocket %.1f KiB",
		res.Fsync.Rate, res.Echo.Rate, res.Echo.Latency.P99, res.Fanout.Rate, res.Fanout.Latency.P99, res.IdleWS.Rate)
	var lanes Ceiling
	for _, c := range res.Inserts {
		if c.Rows == 10 && c.Conns == postgres.DefaultBatchLanes {
			lanes = c
		}
	}
	res.Model = newModel(float64(runtime.NumCPU()), lanes, res.Echo, res.Fanout)

	base := Config{
		Nodes: []string{a.url, b.url}, AgentPrefix: "load", PasswordOf: func(n string) string { return "password-" + n },
		AgentShare: 0.2, Size: 200, Service: "default", SpreadAddrs: true,
		BackoffMin: 250 * time.Millisecond, BackoffMax: 10 * time.Second, Setup: 3 * time.Minute, Drain: time.Minute,
		DatabaseURL: dbURL, AgentdPIDs: []int{a.cmd.Process.Pid, b.cmd.Process.Pid},
	}
	skip := map[string]bool{}
	for _, s := range splitList(os.Getenv("AGENTD_BENCH_SKIP")) {
		skip[s] = true
	}
	run := func(what string, cfg Config) *Report {
		if skip[cfg.Scenario] {
			res.Problems = append(res.Problems, what+": skipped (AGENTD_BENCH_SKIP)")
			return nil
		}
		t.Logf("%s: %s, %d customers, %d agents, rates %v, step %s", time.Now().UTC().Format("15:04:05"), what, cfg.Customers, cfg.Agents, cfg.Rates, cfg.Step)
		_, rep, err := execute(ctx, cfg)
		if err != nil {
			res.Problems = append(res.Problems, what+": "+err.Error())
			t.Errorf("%s: %v", what, err)
			return nil
		}
		var sb strings.Builder
		printReport(&sb, rep)
		t.Log(what + " (durable cluster)\n" + sb.String())
		for _, v := range rep.Violations {
			t.Errorf("%s: %s", what, v)
		}
		return rep
	}

	ramp := base
	ramp.Scenario, ramp.Customers, ramp.Agents, ramp.Rates, ramp.Step = "steady", sz.Customers, sz.Agents, sz.Rates, step
	res.Ramp = run("ramp", ramp)

	storm := base
	storm.Scenario, storm.Customers, storm.Agents, storm.AgentPrefix = "reconnect", sz.Storm, stormAgents, "storm"
	storm.Rates, storm.Step = []float64{200}, 16*time.Second
	storm.Faults = reconnectStorm(storm)
	res.StormN, res.StormCap = sz.Storm, (sz.Storm+stormAgents-1)/stormAgents
	res.Reconnect = run("reconnect storm", storm)

	// The start storm goes to a fresh node, alone: its RSS growth is the started sessions'.
	c := startAgentd(t, bin, dbURL)
	starts := base
	starts.Scenario, starts.Nodes, starts.AgentdPIDs = "starts", []string{c.url}, []int{c.cmd.Process.Pid}
	starts.Rates, starts.Step, starts.Drain = sz.StartRates, startStep, 2*time.Minute
	var before, after int
	_ = db.QueryRow(ctx, `SELECT count(*) FROM interactions`).Scan(&before)
	res.Starts = run("session-start storm", starts)
	_ = db.QueryRow(ctx, `SELECT count(*) FROM interactions`).Scan(&after)
	res.StartedN = after - before

	res.LoadEnd, res.Took = loadAvg(), time.Since(res.Started).Seconds()
	doc := envOr("AGENTD_BENCH_DOC", "../../docs/benchmarks.md")
	svgPath := envOr("AGENTD_BENCH_SVG", filepath.Join(filepath.Dir(doc), "bench-latency.svg"))
	if res.Ramp != nil {
		f, err := os.Create(svgPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSVG(f, latencyPlot(res.Ramp)); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	section := renderBench(res, filepath.Base(svgPath))
	if err := replaceSection(doc, section); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + section)
	if path := os.Getenv("AGENTD_BENCH_JSON"); path != "" {
		out, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// postgresCPU returns a reader of the CPU seconds of the postmaster of db's cluster and all its
// processes (the exited ones' included), from /proc.
func postgresCPU(ctx context.Context, t *testing.T, db *pgxpool.Pool) func() float64 {
	var backend int
	if err := db.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		t.Fatal(err)
	}
	pm := int(statusField(backend, "PPid"))
	if pm <= 1 {
		t.Fatalf("no postmaster for backend %d in /proc", backend)
	}
	return func() float64 {
		s := cpuSeconds(pm, true)
		for _, c := range children(pm) {
			s += cpuSeconds(c)
		}
		return s
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := statusMem()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d cores (%s), %s RAM, Linux %s, %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)), runtime.Version())
}

func statusMem() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return fmt.Sprintf("%.0f GiB", kb/1024/1024)
		}
	}
	return "?"
}

// latencyPlot is delivery p50 and p99 against offered load, one point per ramp step.
func latencyPlot(rep *Report) Plot {
	p := Plot{Title: "make bench: delivery latency against offered load (durable commits, two nodes)",
		XLabel: "offered messages per second (customers and agents)", YLabel: "send → delivered to the other party (ms, log scale)"}
	p50 := Series{Name: "delivery p50", Marker: "circle"}
	p99 := Series{Name: "delivery p99", Marker: "square", Dash: "6 4"}
	for _, s := range rep.Steps {
		p50.X, p50.Y = append(p50.X, s.Offered), append(p50.Y, s.Delivery.P50)
		p99.X, p99.Y = append(p99.X, s.Offered), append(p99.Y, s.Delivery.P99)
	}
	p.Series = []Series{p50, p99}
	p.RefY, p.RefLabel = 50, "issue 10's target: p99 under 50 ms"
	return p
}

const (
	benchBegin = "<!-- make bench: begin (written by cmd/chatload/bench_all_test.go; do not edit by hand) -->"
	benchEnd   = "<!-- make bench: end -->"
)

// replaceSection writes section between the markers of the doc at path, or, the first time,
// before its first "## " heading.
func replaceSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	block := benchBegin + "\n" + section + benchEnd + "\n"
	if i := strings.Index(doc, benchBegin); i >= 0 {
		j := strings.Index(doc, benchEnd)
		if j < i {
			return errors.New(path + ": the make bench begin marker has no end marker after it")
		}
		doc = doc[:i] + block + strings.TrimPrefix(doc[j+len(benchEnd):], "\n")
	} else if i := strings.Index(doc, "\n## "); i >= 0 {
		doc = doc[:i+1] + block + "\n" + doc[i+1:]
	} else {
		doc += "\n" + block
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

func num(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func pct(v float64) string { return fmt.Sprintf("%.0f%%", v) }

// saturation is the highest achieved rate of a ramp, and the step at 70% of it (the last step
// whose offered load is at most 70% of the saturation rate).
func saturation(rep *Report) (sat float64, at70 *StepReport) {
	for _, s := range rep.Steps {
		sat = max(sat, s.Achieved)
	}
	for i := range rep.Steps {
		if rep.Steps[i].Offered <= 0.7*sat*1.0001 {
			at70 = &rep.Steps[i]
		}
	}
	return sat, at70
}

// renderBench is the doc section: machine, settings, ceilings, results, ratios.
func renderBench(r *benchResult, svg string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## make bench (`cmd/chatload/bench_all_test.go`, `TestBench`)\n\n")
	w("    make bench        # AGENTD_BENCH=1 go test -run '^TestBench$' -v ./cmd/chatload/\n\n")
	w("Written by `make bench` on %s UTC in %.0f s. Machine: %s. Load average (1, 5, 15 min) %s before, %s after.\n",
		r.Started.Format("2006-01-02 15:04"), r.Took, r.Machine, r.LoadStart, r.LoadEnd)
	w("Everything below ran in this one run, on one private cluster started with `localpg.Options{Durable: true}`:\n")
	w("**durable commits** (%s). agentd nodes, Postgres and the load tool share the cores.", r.Settings)
	if busy(r.LoadStart, r.LoadEnd) {
		w(" **The machine was not to itself:** a load average above its %d cores means other work (other engineers' builds and tests) shared them during the run, so every rate here is low and every latency high against a quiet machine, and a repetition moves them.", runtime.NumCPU())
	}
	w("\n\n")
	w("### Ceilings (the parts alone, same cluster, same run)\n\n")
	w("Durable inserts into `transcript_events` (the real table: its generated search vector, GIN index and foreign keys), rows of real interactions, one `INSERT … SELECT generate_series` of R 200-byte rows per commit, C connections at once, each appending to its own interaction, %.0f s each; CPU is Postgres' (all its processes) plus the tool's, per row:\n\n", r.Config.CeilingSecs)
	w("| rows per commit | connections | rows/s | commits/s | commit p50 | p99 | CPU per row |\n|---|---|---|---|---|---|---|\n")
	for _, c := range r.Inserts {
		w("| %d | %d | %s | %s | %s | %s | %.3f ms |\n", c.Rows, c.Conns, num(c.Rate), num(c.Commits), ms(c.Latency.P50), ms(c.Latency.P99), c.CPUPerOp*1000)
	}
	w("\n| ceiling | rate | latency | CPU per op | how |\n|---|---|---|---|---|\n")
	if r.Fsync.Rate > 0 {
		w("| disk flush (fdatasync) | %s/s | %s per flush | — | %s |\n", num(r.Fsync.Rate), ms(r.Fsync.Latency.P50), r.Fsync.Note)
	}
	w("| websocket echo | %s msg/s | round trip p50 %s, p99 %s | %.3f ms | %s |\n", num(r.Echo.Rate), ms(r.Echo.Latency.P50), ms(r.Echo.Latency.P99), r.Echo.CPUPerOp*1000, r.Echo.Note)
	w("| websocket fan-out 1→2 | %s msg/s (%s deliveries/s) | both delivered p50 %s, p99 %s | %.3f ms | %s |\n", num(r.Fanout.Rate), num(2*r.Fanout.Rate), ms(r.Fanout.Latency.P50), ms(r.Fanout.Latency.P99), r.Fanout.CPUPerOp*1000, r.Fanout.Note)
	if r.IdleWS.Rate != 0 {
		w("| idle websocket memory | %.1f KiB per socket | — | — | %d sockets; %s |\n", r.IdleWS.Rate, r.IdleWS.Conns, r.IdleWS.Note)
	}
	m := r.Model
	w("\n**The model.** A durable message costs one batched row (agentd's group commit writes on %d lanes, so the 10-rows × %d-connections insert), one websocket round trip (the send and its ack) and one fan-out to two sockets (the customer's other tab and the agent). On a CPU-bound machine the parts' CPU adds up: ceiling = min(cores / (CPU per row + per echo + per fan-out), each part's own rate) = min(%.0f / (%.3f + %.3f + %.3f ms), %s, %s, %s) = **%s msg/s**. ",
		postgres.DefaultBatchLanes, postgres.DefaultBatchLanes, m.Cores, m.Insert.CPUPerOp*1000, m.Echo.CPUPerOp*1000, m.Fanout.CPUPerOp*1000, num(m.Insert.Rate), num(m.Echo.Rate), num(m.Fanout.Rate), num(m.Ceiling))
	w("It leaves out everything agentd must do besides (the idempotency record, the interaction's index and lock, NOTIFY, JSON, routing, the console's rendering), so it is a bound no implementation of this protocol reaches; the disk (%s flushes/s) is not the limit.\n\n", num(r.Fsync.Rate))

	w("### Results\n\n")
	if rep := r.Ramp; rep != nil {
		sat, at70 := saturation(rep)
		w("**Steady ramp**, two nodes, %d customers and %d agents spread over both, 200-byte messages, agents answering 0.2 messages per customer message, open loop, %s per step. Latencies from the moment the schedule called for the send; \"delivered\" is when the other party (agent console or customer) has it. Invariant checker: %s.\n\n", rep.Customers, rep.Agents, r.Config.Step, checked(rep))
		w("| offered msg/s | achieved | %% of ceiling | ack p50 | ack p99 | delivery p50 | p90 | p99 | p99.9 | agentd CPU s/1k | Postgres CPU s/1k | WAL B/msg | WAL fsyncs/msg | xact/msg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range rep.Steps {
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %.2f | %.2f |\n", num(s.Offered), num(s.Achieved), pct(m.Percent(s.Achieved)), ms(s.Ack.P50), ms(s.Ack.P99),
				ms(s.Delivery.P50), ms(s.Delivery.P90), ms(s.Delivery.P99), ms(s.Delivery.P999), s.AgentdCPUPerK, s.PGCPUPerK, num(s.WALBytesPerMsg), s.WALSyncPerMsg, s.XactPerMsg)
		}
		w("\nSaturation (the highest achieved rate): **%s msg/s, %s of the ceiling**.", num(sat), pct(m.Percent(sat)))
		if at70 != nil {
			w(" At 70%% of it (the step offering %s): delivery p99 %s.", num(at70.Offered), ms(at70.Delivery.P99))
		}
		w(" Unanswered %d, undelivered %d, resent %d, errors %v.\n\n![Delivery latency p50 (circles, solid) and p99 (squares, dashed) against offered load](%s)\n\n", rep.Unacked, rep.Undelivered, rep.CustomerResends, rep.Errors, svg)
	}
	if rep := r.Reconnect; rep != nil {
		w("**Reconnect storm**, %d sessions (%d agents, %d chats each at most) on two nodes, 200 customer msg/s: in the middle of the step every socket, customers' and agents', is dropped at once; each customer reconnects with backoff, restores from its last index and resends its unanswered command. Every socket back after: %v ms. Invariant checker (no gap, no repeat, every ack stored once): %s. Unanswered %d, undelivered %d, errors %v.\n\n", rep.Customers, rep.Agents, r.StormCap, rep.ResumeMs, checked(rep), rep.Unacked, rep.Undelivered, rep.Errors)
	}
	if rep := r.Starts; rep != nil {
		w("**Session-start storm**, onto a third, fresh node alone: open-loop new sessions a second, %s per step, each socket staying open (no agent takes them). Latency is start → its result.\n\n", r.Config.StartStep)
		w("| offered starts/s | achieved | start p50 | p90 | p99 | p99.9 | agentd CPU s/1k | Postgres CPU s/1k | xact/start |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range rep.Steps {
			w("| %s | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f |\n", num(s.Offered), num(s.Achieved), ms(s.Ack.P50), ms(s.Ack.P90), ms(s.Ack.P99), ms(s.Ack.P999), s.AgentdCPUPerK, s.PGCPUPerK, s.XactPerMsg)
		}
		w("\nThe node then held the %s sessions started (interactions created; each customer stayed connected until the end, errors below); its RSS grew by **%.1f KiB per connection** (RSS, so everything the process took: the heap and stacks, and what the runtime keeps). Invariant checker: %s. Errors %v.\n\n", num(float64(r.StartedN)), rep.RSSPerConnKB, checked(rep), rep.Errors)
	}
	w("### Against the issue's targets\n\n| target | measured | ratio |\n|---|---|---|\n")
	if rep := r.Ramp; rep != nil {
		sat, at70 := saturation(rep)
		p99 := "—"
		if at70 != nil {
			p99 = ms(at70.Delivery.P99)
		}
		w("| ≥ 4,000 customer msg/s end to end | saturation %s msg/s (both sides) | %s |\n", num(sat), pct(100*sat/4000))
		w("| delivery p99 < 50 ms at 70%% of saturation | %s | %s |\n", p99, ratioUnder(at70, 50))
		w("| ≥ 60%% of the measured ceiling | %s of %s | %s of the 60%% |\n", pct(m.Percent(sat)), num(m.Ceiling), pct(m.Percent(sat)/0.6))
	}
	if rep := r.Starts; rep != nil {
		best, bestP99 := 0.0, 0.0
		for _, s := range rep.Steps {
			if s.Ack.P99 < 50 && s.Achieved > best {
				best, bestP99 = s.Achieved, s.Ack.P99
			}
		}
		w("| ≤ 20 KB per idle started connection | %.1f KiB RSS | %s of the budget |\n", rep.RSSPerConnKB, pct(100*rep.RSSPerConnKB*1.024/20))
		if best > 0 {
			w("| ≥ 2,000 starts/s with p99 < 50 ms | %s/s (p99 %s) | %s |\n", num(best), ms(bestP99), pct(100*best/2000))
		} else {
			top, topP99 := 0.0, 0.0
			for _, s := range rep.Steps {
				if s.Achieved > top {
					top, topP99 = s.Achieved, s.Ack.P99
				}
			}
			w("| ≥ 2,000 starts/s with p99 < 50 ms | no step with p99 under 50 ms; at most %s/s (p99 %s) | 0%% (%s of the rate) |\n", num(top), ms(topP99), pct(100*top/2000))
		}
		w("| 10,000 connections on one node | %s held | %s |\n", num(float64(r.StartedN)), pct(100*float64(r.StartedN)/10000))
	}
	if rep := r.Reconnect; rep != nil {
		worst := 0.0
		for _, v := range rep.ResumeMs {
			worst = max(worst, v)
		}
		drained := "everything delivered afterwards"
		if !rep.Drained {
			drained = fmt.Sprintf("**not drained** within the minute after (%d undelivered): checked what had arrived", rep.Undelivered)
		}
		w("| 5,000 sessions resumed < 10 s, zero gaps | %s sessions' sockets all back in %s, %d violations; %s | %s of the 10 s |\n", num(float64(rep.Customers)), ms(worst), len(rep.Violations), drained, pct(100*worst/10000))
	}
	if len(r.Problems) > 0 {
		w("\nNot measured in this run: %s.\n", strings.Join(r.Problems, "; "))
	}
	w("\n")
	return b.String()
}

// busy reports whether either load average (the 1-minute figure) is above the core count.
func busy(loads ...string) bool {
	for _, l := range loads {
		f := strings.Fields(l)
		if len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil && v > float64(runtime.NumCPU()) {
				return true
			}
		}
	}
	return false
}

func checked(rep *Report) string {
	switch {
	case !rep.Checked:
		return "not run"
	case len(rep.Violations) > 0:
		return fmt.Sprintf("**%d violations**", len(rep.Violations))
	case !rep.Drained:
		return "OK for everything delivered (not drained: past saturation)"
	default:
		return "OK"
	}
}

func ratioUnder(s *StepReport, limitMs float64) string {
	if s == nil {
		return "—"
	}
	if s.Delivery.P99 <= limitMs {
		return "met"
	}
	return fmt.Sprintf("%.1f× over", s.Delivery.P99/limitMs)
}
