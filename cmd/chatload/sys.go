package main

import (
	"context"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds returns utime+stime of a process from /proc/<pid>/stat (0 when it is gone); with
// reaped, also cutime+cstime, the time of its children that exited and were waited for (a
// postmaster's backends of closed connections).
func cpuSeconds(pid int, reaped ...bool) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	if len(reaped) > 0 && reaped[0] && len(f) >= 15 {
		cu, _ := strconv.ParseFloat(f[13], 64)
		cs, _ := strconv.ParseFloat(f[14], 64)
		u += cu + cs
	}
	return (u + st) / clockTicks
}

// statusField returns a numeric field of /proc/<pid>/status (VmRSS in kB, PPid).
func statusField(pid int, name string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// children returns the processes whose parent is pid (a postmaster's backends and workers).
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if statusField(p, "PPid") == int64(pid) {
			out = append(out, p)
		}
	}
	return out
}

// Sample is the counters read at one moment.
type Sample struct {
	AgentdCPU   float64
	PostgresCPU float64
	AgentdRSSKB int64
	WALRecords  int64
	WALBytes    int64
	WALSync     int64
	XactCommit  int64
	HaveWAL     bool
}

// sampler reads CPU and memory from /proc and WAL and transaction counts from Postgres.
type sampler struct {
	agentd     []int
	postmaster int
	db         *pgxpool.Pool
	walSync    bool
}

func newSampler(ctx context.Context, agentd []int, postmaster int, db *pgxpool.Pool) *sampler {
	s := &sampler{agentd: agentd, postmaster: postmaster, db: db}
	if db != nil && postmaster == 0 {
		// The backend serving this pool is a child of the postmaster; on this machine /proc shows it.
		var backend int
		if db.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend) == nil {
			if pp := statusField(backend, "PPid"); pp > 1 {
				s.postmaster = int(pp)
			}
		}
	}
	if db != nil {
		var n int64
		s.walSync = db.QueryRow(ctx, `SELECT wal_sync FROM pg_stat_wal`).Scan(&n) == nil
	}
	return s
}

func (s *sampler) sample(ctx context.Context) Sample {
	var out Sample
	for _, p := range s.agentd {
		out.AgentdCPU += cpuSeconds(p)
		out.AgentdRSSKB += statusField(p, "VmRSS")
	}
	if s.postmaster > 0 {
		out.PostgresCPU = cpuSeconds(s.postmaster, true)
		for _, c := range children(s.postmaster) {
			out.PostgresCPU += cpuSeconds(c)
		}
	}
	if s.db != nil {
		_, _ = s.db.Exec(ctx, `SELECT pg_stat_clear_snapshot()`)
		q := `SELECT wal_records, wal_bytes::bigint, 0 FROM pg_stat_wal`
		if s.walSync {
			q = `SELECT wal_records, wal_bytes::bigint, wal_sync FROM pg_stat_wal`
		}
		out.HaveWAL = s.db.QueryRow(ctx, q).Scan(&out.WALRecords, &out.WALBytes, &out.WALSync) == nil
		_ = s.db.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&out.XactCommit)
	}
	return out
}
