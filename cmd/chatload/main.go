// Command chatload puts real chat load on one or several agentd nodes and proves nothing was
// lost. Customers speak /ws/chat as static/chat-service.js does (start, send with client command
// ids one at a time, restore from the last delivered index after every lost socket, resend of
// unanswered commands with their ids, the next node when a node does not answer); agents sign
// in through the /login form, open /ws/console with the CSRF hello, go Ready, accept what they
// are offered and answer in every chat they hold. Sends are scheduled by the clock (open loop),
// in steps of offered rate, so saturation shows as growing latency instead of a slower client.
//
// Every command, acknowledgement and delivery is recorded; the report gives throughput,
// p50/p90/p99/p99.9 of send→ack and send→delivered-to-the-other-party, errors, CPU seconds per
// 1,000 messages of agentd and Postgres, WAL bytes, fsyncs and transactions per message and
// agentd memory per connection. With -database-url the invariant checker then compares the log
// with transcript_events and exits 1 on any violation, naming it.
//
//	chatload -nodes http://127.0.0.1:8080 -database-url postgres://… -agentd-pids 1234 \
//	    -customers 100 -agents 10 -rates 200,500,1000 -step 10s
//
// Agents must exist (agentd user add --username load000 --password password-load000 …, with a
// capacity of at least customers/agents). The server's per-address limits apply to the tool: run
// agentd with AGENTD_STARTS_PER_MINUTE, AGENTD_COMMANDS_PER_SECOND and AGENTD_MAX_CONNS_PER_ADDR
// raised, or give -spread-addrs so every client connects from its own 127.x.y.z address. Only
// loopback and private test hosts should ever be targets.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is one run.
type Config struct {
	Scenario      string   // steady, twonode or reconnect
	Nodes         []string // base URLs
	Customers     int      // concurrent chats
	Agents        int      // agents load000…; each holds Customers/Agents chats
	AgentPrefix   string   // agent usernames: prefix + 3 digits
	PasswordOf    func(string) string
	Rates         []float64     // offered customer messages/s, one step each
	AgentShare    float64       // agent messages per customer message
	Step          time.Duration // length of each step
	Size          int           // message bytes
	Service       string
	SpreadAddrs   bool
	BackoffMin    time.Duration
	BackoffMax    time.Duration
	Setup         time.Duration // bound on signing in and getting every chat accepted
	Drain         time.Duration // bound on the wait for every ack and delivery after the last step
	DatabaseURL   string
	AgentdPIDs    []int
	PostmasterPID int
	Faults        []Fault
}

// Fault runs at an offset from the start of the first step.
type Fault struct {
	At   time.Duration
	Name string
	Do   func(ctx context.Context, r *Run) error
}

// Run is a run in progress.
type Run struct {
	cfg       Config
	log       *Log
	rate      atomic.Uint64 // float64 bits: customer messages/s offered now
	sending   atomic.Bool
	customers []*customer
	agents    []*agent
	resume    []time.Duration
	mu        sync.Mutex
}

func (r *Run) customerRate() float64 {
	return math.Float64frombits(r.rate.Load()) / float64(max(len(r.customers), 1))
}

// agentRate is each chat's agent messages/s.
func (r *Run) agentRate() float64 { return r.customerRate() * r.cfg.AgentShare }

// StepReport is the figures of one step of offered rate.
type StepReport struct {
	Offered        float64     `json:"offered_msgs_per_s"` // customers' and agents' messages together
	Achieved       float64     `json:"achieved_msgs_per_s"`
	Sent           int         `json:"sent"`
	Acked          int         `json:"acked"`
	Ack            Percentiles `json:"send_to_ack"`
	Delivery       Percentiles `json:"send_to_delivered"`
	AgentdCPUPerK  float64     `json:"agentd_cpu_s_per_1000_msgs"`
	PGCPUPerK      float64     `json:"postgres_cpu_s_per_1000_msgs"`
	WALBytesPerMsg float64     `json:"wal_bytes_per_msg"`
	WALSyncPerMsg  float64     `json:"wal_fsyncs_per_msg"`
	XactPerMsg     float64     `json:"transactions_per_msg"`
}

// Report is the outcome of a run.
type Report struct {
	Scenario        string         `json:"scenario"`
	Nodes           []string       `json:"nodes"`
	Customers       int            `json:"customers"`
	Agents          int            `json:"agents"`
	Steps           []StepReport   `json:"steps"`
	Errors          map[string]int `json:"errors"`
	Marks           []Mark         `json:"marks"`
	RSSPerConnKB    float64        `json:"agentd_rss_kb_per_connection"`
	ResumeMs        []float64      `json:"resume_ms,omitempty"`
	ConsoleRate     float64        `json:"agent_console_frames_per_s_at_top_step"`
	Unacked         int            `json:"unacknowledged"`
	Undelivered     int            `json:"undelivered"`
	Violations      []string       `json:"violations"`
	Checked         bool           `json:"checked"`
	Drained         bool           `json:"drained"` // every message answered and every party caught up within -drain-timeout
	CustomerResends int            `json:"resent_commands"`
}

func main() {
	var cfg Config
	var nodes, rates, pids string
	var pwPrefix string
	var jsonOut bool
	var logFile string
	flag.StringVar(&cfg.Scenario, "scenario", "steady", "steady (customers and agents spread over the nodes), twonode (customers on the first node, agents on the second), reconnect (steady, with every socket dropped and resumed in the middle of each step), starts (session-start storm: -rates are new sessions a second, each stays connected), hot (one chat: every customer is a tab of the same session), typing (customers send typing previews instead of messages) or userdata (customers send update_userdata instead of messages)")
	flag.StringVar(&nodes, "nodes", "http://127.0.0.1:8080", "comma-separated agentd base URLs")
	flag.IntVar(&cfg.Customers, "customers", 100, "concurrent chats (one customer socket each)")
	flag.IntVar(&cfg.Agents, "agents", 10, "agents signed in (usernames PREFIX000…)")
	flag.StringVar(&cfg.AgentPrefix, "agent-prefix", "load", "agent username prefix")
	flag.StringVar(&pwPrefix, "agent-password-prefix", "password-", "an agent's password is this prefix and its username")
	flag.StringVar(&rates, "rates", "100,200,400", "offered customer messages per second, one step each (the ramp)")
	flag.Float64Var(&cfg.AgentShare, "agent-share", 0.2, "agent messages per customer message (a console may send 20 frames a second)")
	flag.DurationVar(&cfg.Step, "step", 10*time.Second, "duration of each step")
	flag.IntVar(&cfg.Size, "size", 200, "message size in bytes")
	flag.StringVar(&cfg.Service, "service", "default", "service the chats start in")
	flag.BoolVar(&cfg.SpreadAddrs, "spread-addrs", false, "connect every client from its own 127.x.y.z address (per-address server limits)")
	flag.DurationVar(&cfg.Setup, "setup-timeout", 2*time.Minute, "bound on setting up every chat")
	flag.DurationVar(&cfg.Drain, "drain-timeout", 30*time.Second, "bound on waiting for every ack and delivery after the last step")
	flag.StringVar(&cfg.DatabaseURL, "database-url", "", "the nodes' database: WAL and transaction counts, and the invariant checker")
	flag.StringVar(&pids, "agentd-pids", "", "comma-separated PIDs of the agentd processes (CPU and memory from /proc)")
	flag.IntVar(&cfg.PostmasterPID, "postmaster-pid", 0, "PID of the postmaster (default: the parent of this tool's backend)")
	flag.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	flag.StringVar(&logFile, "log", "", "also write every recorded command as JSON lines to this file")
	flag.Parse()
	cfg.Nodes = splitList(nodes)
	cfg.PasswordOf = func(name string) string { return pwPrefix + name }
	cfg.BackoffMin, cfg.BackoffMax = 250*time.Millisecond, 10*time.Second
	for _, s := range splitList(rates) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			fatalf("-rates: %q is not a positive number", s)
		}
		cfg.Rates = append(cfg.Rates, v)
	}
	for _, s := range splitList(pids) {
		p, err := strconv.Atoi(s)
		if err != nil {
			fatalf("-agentd-pids: %q is not a PID", s)
		}
		cfg.AgentdPIDs = append(cfg.AgentdPIDs, p)
	}
	if cfg.Scenario == "reconnect" {
		cfg.Faults = reconnectStorm(cfg)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r, rep, err := execute(ctx, cfg)
	if err != nil {
		fatalf("%v", err)
	}
	if logFile != "" {
		if err := writeLog(logFile, r.log); err != nil {
			fatalf("-log: %v", err)
		}
	}
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(os.Stdout, rep)
	}
	if len(rep.Violations) > 0 {
		os.Exit(1)
	}
	if !rep.Drained {
		os.Exit(3)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "chatload: "+format+"\n", a...)
	os.Exit(2)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func writeLog(path string, l *Log) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, s := range l.snapshot() {
		if err := enc.Encode(s); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// reconnectStorm drops every socket, customers' and agents', in the middle of each step.
func reconnectStorm(cfg Config) []Fault {
	var out []Fault
	for i := range cfg.Rates {
		out = append(out, Fault{At: time.Duration(i)*cfg.Step + cfg.Step/2, Name: "reconnect storm", Do: DropAll})
	}
	return out
}

// DropAll drops every socket at once and waits until every customer restored its session and
// every agent's console said hello again; the time it took is reported.
func DropAll(ctx context.Context, r *Run) error {
	start := time.Now()
	before := make([]int64, len(r.customers))
	for i, c := range r.customers {
		before[i] = c.attaches.Load()
		c.ctl <- func(c *customer) { c.lost() }
	}
	abefore := make([]int64, len(r.agents))
	for i, a := range r.agents {
		abefore[i] = a.connects.Load()
		a.ctl <- func(a *agent) { a.lost() }
	}
	err := waitUntil(ctx, time.Minute, func() bool {
		for i, c := range r.customers {
			if c.attaches.Load() == before[i] {
				return false
			}
		}
		for i, a := range r.agents {
			if a.connects.Load() == abefore[i] {
				return false
			}
		}
		return true
	})
	r.mu.Lock()
	r.resume = append(r.resume, time.Since(start))
	r.mu.Unlock()
	return err
}

// LoseAck has one customer drop its socket right after writing its next message, before the
// ack; it sends the same id again after the reconnect.
func LoseAck(n int) func(ctx context.Context, r *Run) error {
	return func(ctx context.Context, r *Run) error {
		c := r.customers[n%len(r.customers)]
		c.ctl <- func(c *customer) { c.loseAck = true }
		return nil
	}
}

func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	return waitEvery(ctx, d, 20*time.Millisecond, cond)
}

func waitEvery(ctx context.Context, d, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// clientIP is a distinct loopback address per client (127.group.hi.lo, lo never 0).
func clientIP(spread bool, group, i int) net.IP {
	if !spread {
		return nil
	}
	return net.IPv4(127, byte(group), byte(i/250), byte(i%250+1))
}

// execute runs cfg: setup, the steps with their faults, the drain and the check.
func execute(ctx context.Context, cfg Config) (*Run, *Report, error) {
	starts := cfg.Scenario == "starts"
	if len(cfg.Nodes) == 0 || len(cfg.Rates) == 0 || (!starts && (cfg.Customers <= 0 || cfg.Agents <= 0)) {
		return nil, nil, errors.New("need nodes, customers, agents and rates")
	}
	if starts {
		cfg.Customers = 0
	}
	r := &Run{cfg: cfg, log: newLog()}
	var db *pgxpool.Pool
	if cfg.DatabaseURL != "" {
		var err error
		if db, err = pgxpool.New(ctx, cfg.DatabaseURL); err != nil {
			return nil, nil, err
		}
		defer db.Close()
	}
	smp := newSampler(ctx, cfg.AgentdPIDs, cfg.PostmasterPID, db)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	custNodes, agentNodes := cfg.Nodes, cfg.Nodes
	if cfg.Scenario == "twonode" {
		if len(cfg.Nodes) < 2 {
			return nil, nil, errors.New("the twonode scenario needs two nodes")
		}
		// Customers on the first node, agents on the second; each falls back to the other.
		custNodes = []string{cfg.Nodes[0], cfg.Nodes[1]}
		agentNodes = []string{cfg.Nodes[1], cfg.Nodes[0]}
	}
	rssBefore := smp.sample(ctx).AgentdRSSKB
	for i := range cfg.Agents {
		a := newAgent(r, fmt.Sprintf("%s%03d", cfg.AgentPrefix, i), agentNodes, i, clientIP(cfg.SpreadAddrs, 1, i))
		if err := a.login(ctx, cfg.PasswordOf(a.name)); err != nil {
			return nil, nil, err
		}
		r.agents = append(r.agents, a)
	}
	for _, a := range r.agents {
		wg.Go(func() { a.loop(runCtx) })
	}
	for i := range cfg.Customers {
		c := newCustomer(r, i, custNodes, i, clientIP(cfg.SpreadAddrs, 2, i))
		c.view = r.log.view(fmt.Sprintf("customer %d", i), "")
		r.customers = append(r.customers, c)
		if cfg.Scenario != "hot" {
			continue
		}
		if i == 0 {
			wg.Go(func() { c.loop(runCtx) }) // the others restore its session
			continue
		}
		// Hot interaction: every customer is another tab of the first one's session.
		if i == 1 {
			first := r.customers[0]
			if err := waitUntil(ctx, cfg.Setup, func() bool { return first.attaches.Load() > 0 }); err != nil {
				return nil, nil, errors.New("setup: the hot session did not start")
			}
			done := make(chan struct{})
			first.ctl <- func(f *customer) { c.sessionID, c.secureKey = f.sessionID, f.secureKey; close(done) }
			<-done
		} else {
			c.sessionID, c.secureKey = r.customers[1].sessionID, r.customers[1].secureKey
		}
		c.view.Session = c.sessionID
	}
	for i, c := range r.customers {
		if cfg.Scenario != "hot" || i > 0 {
			wg.Go(func() { c.loop(runCtx) })
		}
	}
	if err := waitUntil(ctx, cfg.Setup, func() bool {
		for _, c := range r.customers {
			select {
			case <-c.joined:
			default:
				return false
			}
		}
		return true
	}); err != nil {
		return nil, nil, fmt.Errorf("setup: not every chat was accepted within %s", cfg.Setup)
	}
	rssAfter := smp.sample(ctx).AgentdRSSKB

	rep := &Report{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Customers: cfg.Customers, Agents: cfg.Agents}
	if len(cfg.AgentdPIDs) > 0 && !starts {
		rep.RSSPerConnKB = float64(rssAfter-rssBefore) / float64(cfg.Customers+cfg.Agents)
	}
	t0 := time.Now()
	faultErr := make(chan error, len(cfg.Faults))
	for _, f := range cfg.Faults {
		wg.Go(func() {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Until(t0.Add(f.At))):
			}
			r.log.mark("fault: " + f.Name)
			if err := f.Do(runCtx, r); err != nil {
				faultErr <- fmt.Errorf("fault %s: %w", f.Name, err)
			}
			r.log.mark("fault done: " + f.Name)
		})
	}
	type window struct {
		from, to time.Time
		a, b     Sample
		rate     float64
	}
	var windows []window
	r.sending.Store(true)
	for _, rate := range cfg.Rates {
		if !starts {
			r.rate.Store(math.Float64bits(rate))
		}
		r.log.mark(fmt.Sprintf("step %.0f/s", rate))
		w := window{from: time.Now(), a: smp.sample(ctx), rate: rate}
		if starts {
			wg.Go(func() { r.startStorm(runCtx, &wg, w.from, rate, cfg.Step) })
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(cfg.Step):
		}
		w.to, w.b = time.Now(), smp.sample(ctx)
		windows = append(windows, w)
	}
	r.sending.Store(false)
	r.rate.Store(0)
	r.log.mark("drain")
	if starts {
		r.mu.Lock()
		n := len(r.customers)
		r.mu.Unlock()
		if len(cfg.AgentdPIDs) > 0 && n > 0 {
			rep.RSSPerConnKB = float64(smp.sample(ctx).AgentdRSSKB-rssAfter) / float64(n)
		}
	}
	// Drain: every message answered (or failed), every party caught up with what is stored.
	drained := waitEvery(ctx, cfg.Drain, 200*time.Millisecond, func() bool { return r.settled(ctx, db) })
	if drained != nil {
		r.log.mark("drain timed out")
	}
	cancel()
	wg.Wait()
	close(faultErr)
	for err := range faultErr {
		rep.Violations = append(rep.Violations, err.Error())
	}

	sends := r.log.snapshot()
	for _, w := range windows {
		chats := float64(cfg.Customers)
		if cfg.Scenario == "hot" {
			chats = 1
		}
		st := StepReport{Offered: w.rate * (1 + cfg.AgentShare*chats/float64(max(cfg.Customers, 1)))}
		if starts {
			st.Offered = w.rate
		}
		var ack, del []time.Duration
		var msgs int
		for _, s := range sends {
			if !s.Acked.IsZero() && !s.Acked.Before(w.from) && s.Acked.Before(w.to) {
				msgs++
			}
			if s.Sched.Before(w.from) || !s.Sched.Before(w.to) {
				continue
			}
			if s.From == "customer" {
				st.Sent++
			}
			if !s.Acked.IsZero() {
				ack = append(ack, s.Acked.Sub(s.Sched))
				if s.From == "customer" {
					st.Acked++
				}
			}
			if !s.Delivered.IsZero() {
				del = append(del, s.Delivered.Sub(s.Sched))
			}
		}
		secs := w.to.Sub(w.from).Seconds()
		st.Achieved = float64(msgs) / secs
		st.Ack, st.Delivery = percentiles(ack), percentiles(del)
		if msgs > 0 {
			k := float64(msgs) / 1000
			st.AgentdCPUPerK = (w.b.AgentdCPU - w.a.AgentdCPU) / k
			st.PGCPUPerK = (w.b.PostgresCPU - w.a.PostgresCPU) / k
			if w.b.HaveWAL {
				st.WALBytesPerMsg = float64(w.b.WALBytes-w.a.WALBytes) / float64(msgs)
				st.WALSyncPerMsg = float64(w.b.WALSync-w.a.WALSync) / float64(msgs)
				st.XactPerMsg = float64(w.b.XactCommit-w.a.XactCommit) / float64(msgs)
			}
		}
		rep.Steps = append(rep.Steps, st)
	}
	for _, s := range sends {
		if s.Acked.IsZero() && s.Err == "" {
			rep.Unacked++
		}
		if s.Delivered.IsZero() && s.Kind == "message" {
			rep.Undelivered++ // a coalesced typing line or UserData table shows only the latest change
		}
		if s.Attempts > 1 {
			rep.CustomerResends++
		}
	}
	r.log.mu.Lock()
	rep.Errors, rep.Marks = r.log.errors, r.log.events
	r.log.mu.Unlock()
	for _, d := range r.resume {
		rep.ResumeMs = append(rep.ResumeMs, float64(d.Milliseconds()))
	}
	rep.Drained = drained == nil
	if n := len(cfg.Rates); n > 0 {
		chats := float64(cfg.Customers) / float64(cfg.Agents)
		rep.ConsoleRate = cfg.Rates[n-1] / float64(cfg.Customers) * cfg.AgentShare * chats
	}
	if db != nil {
		v, err := check(ctx, db, r.log, rep.Drained)
		if err != nil {
			return nil, nil, fmt.Errorf("checker: %w", err)
		}
		rep.Checked = true
		rep.Violations = append(rep.Violations, v...)
	}
	return r, rep, nil
}

// startStorm opens new customer sessions at rate a second for d, each at its scheduled time
// (open loop); every one stays connected until the end of the run.
func (r *Run) startStorm(ctx context.Context, wg *sync.WaitGroup, from time.Time, rate float64, d time.Duration) {
	n := int(rate * d.Seconds())
	for k := range n {
		at := from.Add(time.Duration(float64(k) / rate * float64(time.Second)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		r.mu.Lock()
		i := len(r.customers)
		c := newCustomer(r, i, r.cfg.Nodes, i, clientIP(r.cfg.SpreadAddrs, 2, i))
		c.view = r.log.view(fmt.Sprintf("customer %d", i), "")
		c.startSend = &Send{ID: c.startID, From: "start", Kind: "start", Sched: at, Index: -1}
		r.log.add(c.startSend)
		r.customers = append(r.customers, c)
		r.mu.Unlock()
		wg.Go(func() { c.loop(ctx) })
	}
}

// settled reports whether every message was answered and every party shows every stored event.
func (r *Run) settled(ctx context.Context, db *pgxpool.Pool) bool {
	for _, s := range r.log.snapshot() {
		if s.Acked.IsZero() && s.Err == "" {
			return false
		}
	}
	if db == nil {
		return true
	}
	counts := map[string]int64{}
	var sessions []string
	r.log.mu.Lock()
	for _, v := range r.log.views {
		if v.Session != "" {
			sessions = append(sessions, v.Session)
		}
	}
	r.log.mu.Unlock()
	rows, err := db.Query(ctx, `SELECT interaction_id::text, count(*) FROM transcript_events
		WHERE interaction_id = ANY($1::uuid[]) GROUP BY 1`, sessions)
	if err != nil {
		return false
	}
	for rows.Next() {
		var iid string
		var n int64
		if rows.Scan(&iid, &n) == nil {
			counts[iid] = n
		}
	}
	rows.Close()
	r.mu.Lock()
	customers := r.customers
	r.mu.Unlock()
	for _, c := range customers {
		var sid string
		done := make(chan struct{})
		select {
		case c.ctl <- func(c *customer) { sid = c.sessionID; close(done) }:
			<-done
		case <-ctx.Done():
			return false
		}
		if c.shown.Load() != counts[sid] {
			return false
		}
	}
	for _, a := range r.agents {
		var behind bool
		done := make(chan struct{})
		a.ctl <- func(a *agent) {
			for iid, ch := range a.chats {
				if int64(ch.shown) != counts[iid] {
					behind = true
				}
			}
			close(done)
		}
		<-done
		if behind {
			return false
		}
	}
	return true
}

func printReport(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "scenario %s, %d customers, %d agents, nodes %s\n", rep.Scenario, rep.Customers, rep.Agents, strings.Join(rep.Nodes, " "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "offered/s\tachieved/s\tack p50\tp90\tp99\tp99.9\tdeliv p50\tp90\tp99\tp99.9\tagentd cpu-s/1k\tpg cpu-s/1k\tWAL B/msg\tfsync/msg\txact/msg\t")
	for _, s := range rep.Steps {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\t%.0f\t%.2f\t%.2f\t\n", s.Offered, s.Achieved,
			s.Ack.P50, s.Ack.P90, s.Ack.P99, s.Ack.P999, s.Delivery.P50, s.Delivery.P90, s.Delivery.P99, s.Delivery.P999,
			s.AgentdCPUPerK, s.PGCPUPerK, s.WALBytesPerMsg, s.WALSyncPerMsg, s.XactPerMsg)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(messages of both sides; latencies in ms from the moment the schedule called for the send)")
	if rep.RSSPerConnKB != 0 {
		fmt.Fprintf(w, "agentd RSS per connection: %.1f KiB\n", rep.RSSPerConnKB)
	}
	if rep.ConsoleRate > 15 {
		fmt.Fprintf(w, "note: each agent sent about %.0f frames/s at the top step; a console socket takes 20\n", rep.ConsoleRate)
	}
	if len(rep.ResumeMs) > 0 {
		fmt.Fprintf(w, "reconnect storms, every socket resumed after (ms): %v\n", rep.ResumeMs)
	}
	fmt.Fprintf(w, "unanswered %d, undelivered %d, resent %d, errors %v\n", rep.Unacked, rep.Undelivered, rep.CustomerResends, rep.Errors)
	if !rep.Drained {
		fmt.Fprintln(w, "NOT DRAINED: clients were still behind at the end of -drain-timeout (saturation); only what they had was checked")
	}
	switch {
	case !rep.Checked:
		fmt.Fprintln(w, "invariants not checked (no -database-url)")
	case len(rep.Violations) == 0 && rep.Drained:
		fmt.Fprintln(w, "invariants: OK")
	case len(rep.Violations) == 0:
		fmt.Fprintln(w, "invariants: OK for everything delivered (not drained)")
	default:
		fmt.Fprintf(w, "INVARIANT VIOLATIONS (%d):\n", len(rep.Violations))
		for _, v := range rep.Violations {
			fmt.Fprintln(w, "  "+v)
		}
	}
}
