package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd/postgres/localpg"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// TestLoadBenchmark is `make bench-load`: it runs only with AGENTD_BENCH_LOAD=1. It starts a
// private Durable cluster (fsync, synchronous_commit and full_page_writes on; it refuses a
// cluster found running without them), a fresh database, two `agentd serve` processes on it,
// and runs chatload's ramp with the invariant checker, CPU from /proc and WAL from pg_stat_wal.
// Settings: AGENTD_BENCH_LOAD_SCENARIO (steady), _CUSTOMERS (100), _AGENTS (20), _RATES
// (250,500,1000,1500 customer messages/s), _STEP (8s), _JSON (a file for the JSON report),
// _PORT (55439) and _PGDATA (a folder under the system's temporary folder).
func TestLoadBenchmark(t *testing.T) {
	if os.Getenv("AGENTD_BENCH_LOAD") != "1" {
		t.Skip("a benchmark: make bench-load (AGENTD_BENCH_LOAD=1)")
	}
	ctx := context.Background()
	port, _ := strconv.Atoi(envOr("AGENTD_BENCH_LOAD_PORT", "55439"))
	srv, _ := durableCluster(t, port, envOr("AGENTD_BENCH_LOAD_PGDATA", filepath.Join(os.TempDir(), "agentd-bench-load-pg")))
	name := fmt.Sprintf("chatload_%d", time.Now().UnixNano())
	if err := localpg.CreateDatabase(ctx, srv.AdminURL, name, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = localpg.DropDatabase(context.Background(), srv.AdminURL, name) })
	dbURL := srv.DatabaseURL(name)

	customers, _ := strconv.Atoi(envOr("AGENTD_BENCH_LOAD_CUSTOMERS", "100"))
	agents, _ := strconv.Atoi(envOr("AGENTD_BENCH_LOAD_AGENTS", "20"))
	step, err := time.ParseDuration(envOr("AGENTD_BENCH_LOAD_STEP", "8s"))
	if err != nil {
		t.Fatal(err)
	}
	var rates []float64
	for _, s := range splitList(envOr("AGENTD_BENCH_LOAD_RATES", "250,500,1000,1500")) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		rates = append(rates, v)
	}
	bin := buildAgentd(t)
	a := startAgentd(t, bin, dbURL) // migrates the database
	b := startAgentd(t, bin, dbURL)
	addAgents(t, bin, dbURL, agents, (customers+agents-1)/agents)
	cfg := Config{
		Scenario: envOr("AGENTD_BENCH_LOAD_SCENARIO", "steady"), Nodes: []string{a.url, b.url}, Customers: customers, Agents: agents,
		AgentPrefix: "load", PasswordOf: func(n string) string { return "password-" + n },
		Rates: rates, AgentShare: 0.2, Step: step, Size: 200, Service: "default", SpreadAddrs: true,
		BackoffMin: 250 * time.Millisecond, BackoffMax: 10 * time.Second, Setup: 2 * time.Minute, Drain: time.Minute,
		DatabaseURL: dbURL, AgentdPIDs: []int{a.cmd.Process.Pid, b.cmd.Process.Pid},
	}
	if cfg.Scenario == "reconnect" {
		cfg.Faults = reconnectStorm(cfg)
	}
	_, rep, err := execute(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	printReport(&sb, rep)
	t.Log("durable cluster (fsync, synchronous_commit, full_page_writes on)\n" + sb.String())
	if path := os.Getenv("AGENTD_BENCH_LOAD_JSON"); path != "" {
		out, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range rep.Violations {
		t.Error(v)
	}
	if !rep.Drained {
		t.Log("not drained: the top step was past saturation (the table shows where)")
	}
}

// durableCluster starts (or reuses) the private cluster in dataDir on port with durable commits,
// stopped at the end when this test started it, and refuses to measure on one whose fsync,
// synchronous_commit or full_page_writes is off. It returns the server and its settings that a
// report names ("fsync on", ...).
func durableCluster(t *testing.T, port int, dataDir string) (*localpg.Server, []string) {
	t.Helper()
	ctx := context.Background()
	opts := localpg.Options{DataDir: dataDir, Port: port, Durable: true}
	srv, err := localpg.Ensure(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Started {
		t.Cleanup(func() { _ = localpg.Stop(context.Background(), opts) })
	}
	conn, err := pgx.Connect(ctx, srv.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var settings []string
	for _, s := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers", "max_connections"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+s).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if (s == "fsync" || s == "synchronous_commit" || s == "full_page_writes") && v != "on" {
			t.Fatalf("the cluster on port %d has %s=%s: not durable, refusing to measure", port, s, v)
		}
		settings = append(settings, s+" "+v)
	}
	return srv, settings
}
