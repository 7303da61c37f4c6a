package main

// Ceilings: what the machine's parts do alone, measured in the same run and on the same cluster
// as the load, so agentd's rate can be read against them (docs/benchmarks.md, "make bench").
//
//   - durable inserts into the real transcript table (transcript_events, rows of real
//     interactions, with its generated search vector and GIN index), R rows per commit on C
//     connections at once, each connection appending to its own interaction;
//   - the disk's flush rate, pg_test_fsync's fdatasync line on the cluster's own disk;
//   - a bare gorilla/websocket loopback server: echo (send, wait for the echo) and fan-out
//     (one sender, the server writes every message to two receivers);
//   - the memory of an idle bare gorilla websocket (ws_idle.go).
//
// Every measurement also takes the CPU seconds it cost (this process and, for the inserts,
// Postgres' processes), which is what the ceiling model adds up (Model).

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Ceiling is one measured ceiling: a rate of operations and the CPU they cost.
type Ceiling struct {
	Name     string      `json:"name"`
	Rows     int         `json:"rows_per_commit,omitempty"`
	Conns    int         `json:"connections,omitempty"`
	Rate     float64     `json:"per_s"`           // rows (inserts) or messages (websocket) a second
	Commits  float64     `json:"commits_per_s"`   // inserts only
	Latency  Percentiles `json:"latency"`         // per commit, per echo, per fan-out delivery
	CPUPerOp float64     `json:"cpu_s_per_op"`    // CPU seconds per row or message, every process measured
	Seconds  float64     `json:"seconds"`         // length of the measurement
	Note     string      `json:"note,omitempty"`  // how it was measured, when not obvious
	Error    string      `json:"error,omitempty"` // the measurement failed: why
}

// measureInserts appends rows to transcript_events for d: conns connections at once, each its own
// interaction (created here, state ended so routing never sees it, removed afterwards), one
// INSERT of rows rows per commit. postgresCPU reads Postgres' CPU seconds (nil: not counted).
func measureInserts(ctx context.Context, db *pgxpool.Pool, rows, conns int, d time.Duration, postgresCPU func() float64) (Ceiling, error) {
	c := Ceiling{Name: fmt.Sprintf("insert %d×%d", rows, conns), Rows: rows, Conns: conns}
	type target struct{ interaction, party string }
	targets := make([]target, conns)
	for i := range targets {
		tok := make([]byte, 16)
		_, _ = rand.Read(tok)
		err := db.QueryRow(ctx, `WITH i AS (
				INSERT INTO interactions (service_id, state, secure_key_hash, start_token_hash, ended_at, end_reason)
				SELECT id, 'ended', $1, $1, now(), 'ceiling measurement' FROM services ORDER BY id LIMIT 1
				RETURNING id)
			INSERT INTO parties (interaction_id, type, name) SELECT id, 'client', 'ceiling' FROM i
			RETURNING interaction_id::text, id::text`, tok).Scan(&targets[i].interaction, &targets[i].party)
		if err != nil {
			return c, fmt.Errorf("insert ceiling: create interaction: %w", err)
		}
	}
	defer func() {
		ids := make([]string, len(targets))
		for i, t := range targets {
			ids[i] = t.interaction
		}
		_, _ = db.Exec(context.WithoutCancel(ctx), `DELETE FROM interactions WHERE id = ANY($1::uuid[])`, ids)
	}()
	text := strings.Repeat("ceiling measurement words ", 8)[:200]
	var total atomic.Int64
	lat := make([][]time.Duration, conns)
	errs := make([]error, conns)
	cpu0, pg0 := cpuSeconds(os.Getpid()), cpuOf(postgresCPU)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			conn, err := db.Acquire(ctx)
			if err != nil {
				errs[w] = err
				return
			}
			defer conn.Release()
			idx := 0
			for time.Now().Before(end) {
				t := time.Now()
				_, err := conn.Exec(ctx, `INSERT INTO transcript_events (interaction_id, idx, kind, party_id, text)
					SELECT $1, $2 + g, 'message', $3, $4 FROM generate_series(0, $5 - 1) g`,
					targets[w].interaction, idx, targets[w].party, text, rows)
				if err != nil {
					errs[w] = err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
				idx += rows
				total.Add(int64(rows))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("insert ceiling %s: %w", c.Name, err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	n := float64(total.Load())
	c.Seconds, c.Rate, c.Commits, c.Latency = secs, n/secs, float64(len(all))/secs, percentiles(all)
	if n > 0 {
		c.CPUPerOp = (cpuSeconds(os.Getpid()) - cpu0 + cpuOf(postgresCPU) - pg0) / n
	}
	return c, nil
}

func cpuOf(f func() float64) float64 {
	if f == nil {
		return 0
	}
	return f()
}

// fdatasyncLine is pg_test_fsync's "fdatasync   7160.123 ops/sec   140 usecs/op".
var fdatasyncLine = regexp.MustCompile(`^\s*fdatasync\s+([0-9.]+) ops/sec\s+([0-9]+) usecs/op`)

// parseFdatasync returns the fdatasync rate from pg_test_fsync's output (ok false when absent).
func parseFdatasync(line string) (perSec float64, usecs int, ok bool) {
	m := fdatasyncLine.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	perSec, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, 0, false
	}
	usecs, _ = strconv.Atoi(m[2])
	return perSec, usecs, true
}

// measureFsync runs pg_test_fsync (from `pg_config --bindir`) with -s secs on a file in dir (the
// cluster's disk) and stops it once its one-8kB-write fdatasync line is printed.
func measureFsync(ctx context.Context, dir string, secs int) (Ceiling, error) {
	c := Ceiling{Name: "fdatasync", Note: "pg_test_fsync -s " + strconv.Itoa(secs) + ", one 8 kB write per sync, on the cluster's disk"}
	bin := "pg_test_fsync"
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		bin = filepath.Join(strings.TrimSpace(string(out)), "pg_test_fsync")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs*10+30)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-s", strconv.Itoa(secs), "-f", filepath.Join(dir, "chatload_pg_test_fsync.tmp"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return c, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return c, fmt.Errorf("%s: %w", bin, err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.Remove(filepath.Join(dir, "chatload_pg_test_fsync.tmp"))
	}()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rate, us, ok := parseFdatasync(sc.Text()); ok {
			c.Rate, c.Seconds = rate, time.Since(start).Seconds()
			c.Latency = Percentiles{N: 1, P50: float64(us) / 1000, P99: float64(us) / 1000}
			return c, nil
		}
	}
	return c, fmt.Errorf("%s: no fdatasync line in its output", bin)
}

// wsServer is a bare gorilla/websocket server on loopback: /echo writes every message back,
// /fan?g=N adds the socket to group N; a message from the first socket of a group is written
// to the group's other sockets.
type wsServer struct {
	srv    *http.Server
	addr   string
	mu     sync.Mutex
	groups map[string][]*websocket.Conn
}

func startWSServer() (*wsServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &wsServer{addr: l.Addr().String(), groups: map[string][]*websocket.Conn{}}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, m, err := c.ReadMessage()
			if err != nil || c.WriteMessage(t, m) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/fan", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		g := r.URL.Query().Get("g")
		s.mu.Lock()
		s.groups[g] = append(s.groups[g], c)
		first := len(s.groups[g]) == 1
		s.mu.Unlock()
		for {
			t, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if !first {
				continue
			}
			s.mu.Lock()
			peers := s.groups[g][1:]
			s.mu.Unlock()
			for _, p := range peers {
				if p.WriteMessage(t, m) != nil {
					return
				}
			}
		}
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *wsServer) close() { _ = s.srv.Close() }

func (s *wsServer) dial(path string) (*websocket.Conn, error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+path, nil)
	return c, err
}

// measureEcho runs conns clients for d, each sending a size-byte message and waiting for its
// echo before the next (closed loop); Rate is echoes a second, Latency the round trip.
func measureEcho(conns, size int, d time.Duration) (Ceiling, error) {
	c := Ceiling{Name: "websocket echo", Conns: conns, Note: fmt.Sprintf("gorilla/websocket loopback, %d clients, %d-byte messages, closed loop", conns, size)}
	s, err := startWSServer()
	if err != nil {
		return c, err
	}
	defer s.close()
	clients := make([]*websocket.Conn, conns)
	for i := range clients {
		if clients[i], err = s.dial("/echo"); err != nil {
			return c, err
		}
		defer clients[i].Close()
	}
	msg := []byte(strings.Repeat("x", size))
	lat := make([][]time.Duration, conns)
	errs := make([]error, conns)
	cpu0, start := cpuSeconds(os.Getpid()), time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				t := time.Now()
				if err := cl.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs[i] = err
					return
				}
				if _, _, err := cl.ReadMessage(); err != nil {
					errs[i] = err
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	return finishWS(c, lat, errs, start, cpu0)
}

// measureFanout runs groups of one sender and two receivers for d: the sender writes a message,
// the server writes it to both receivers, and the sender sends the next once both have it.
// Rate is messages sent a second (each delivered twice), Latency send → the second delivery.
func measureFanout(groups, size int, d time.Duration) (Ceiling, error) {
	c := Ceiling{Name: "websocket fan-out 1→2", Conns: groups * 3, Note: fmt.Sprintf("gorilla/websocket loopback, %d groups of a sender and 2 receivers, %d-byte messages, closed loop", groups, size)}
	s, err := startWSServer()
	if err != nil {
		return c, err
	}
	defer s.close()
	type group struct{ send, a, b *websocket.Conn }
	gs := make([]group, groups)
	for i := range gs {
		path := "/fan?g=" + strconv.Itoa(i)
		var conns [3]*websocket.Conn
		for k := range conns {
			if conns[k], err = s.dial(path); err != nil {
				return c, err
			}
			defer conns[k].Close()
			if k == 0 {
				// The server must register the sender first: wait until it has.
				if err := waitUntil(context.Background(), 5*time.Second, func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					return len(s.groups[strconv.Itoa(i)]) == 1
				}); err != nil {
					return c, errors.New("fan-out: the server did not register the sender")
				}
			}
		}
		gs[i] = group{conns[0], conns[1], conns[2]}
		if err := waitUntil(context.Background(), 5*time.Second, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.groups[strconv.Itoa(i)]) == 3
		}); err != nil {
			return c, errors.New("fan-out: the server did not register the receivers")
		}
	}
	msg := []byte(strings.Repeat("x", size))
	lat := make([][]time.Duration, groups)
	errs := make([]error, groups)
	cpu0, start := cpuSeconds(os.Getpid()), time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i, g := range gs {
		wg.Go(func() {
			for time.Now().Before(end) {
				t := time.Now()
				if err := g.send.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs[i] = err
					return
				}
				var rwg sync.WaitGroup
				var rerr [2]error
				for k, r := range []*websocket.Conn{g.a, g.b} {
					rwg.Go(func() { _, _, rerr[k] = r.ReadMessage() })
				}
				rwg.Wait()
				if err := errors.Join(rerr[:]...); err != nil {
					errs[i] = err
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	return finishWS(c, lat, errs, start, cpu0)
}

func finishWS(c Ceiling, lat [][]time.Duration, errs []error, start time.Time, cpu0 float64) (Ceiling, error) {
	secs := time.Since(start).Seconds()
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%s: %w", c.Name, err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	c.Seconds, c.Rate, c.Latency = secs, float64(len(all))/secs, percentiles(all)
	if len(all) > 0 {
		c.CPUPerOp = (cpuSeconds(os.Getpid()) - cpu0) / float64(len(all))
	}
	return c, nil
}

// Model is the ceiling of the end-to-end durable message path, from the measured parts. A
// message costs one batched durable row (agentd's lanes write batches on DefaultBatchLanes
// connections), one websocket round trip (the customer's send and its ack) and one fan-out to
// two sockets (the customer's other tab and the agent). On a machine whose cores the nodes,
// Postgres and the load tool share, each part's CPU per message adds up:
//
//	CPUBound = Cores / (insert CPU/row + echo CPU/msg + fan-out CPU/msg)
//	Ceiling  = min(CPUBound, insert rows/s, echo msgs/s, fan-out msgs/s)
//
// (the second term only matters when a part is bound by something else than CPU, the disk's
// flushes for instance). The parts' CPU includes their clients' (the load tool's share) and, for
// the inserts, Postgres'.
type Model struct {
	Cores     float64 `json:"cores"`
	Insert    Ceiling `json:"insert"`
	Echo      Ceiling `json:"echo"`
	Fanout    Ceiling `json:"fanout"`
	CPUPerMsg float64 `json:"cpu_s_per_msg"`
	CPUBound  float64 `json:"cpu_bound_per_s"`
	Ceiling   float64 `json:"ceiling_per_s"`
}

// newModel computes the ceiling; a part with no rate (it failed) leaves the ceiling 0.
func newModel(cores float64, insert, echo, fanout Ceiling) Model {
	m := Model{Cores: cores, Insert: insert, Echo: echo, Fanout: fanout}
	if insert.Rate <= 0 || echo.Rate <= 0 || fanout.Rate <= 0 || cores <= 0 {
		return m
	}
	m.CPUPerMsg = insert.CPUPerOp + echo.CPUPerOp + fanout.CPUPerOp
	if m.CPUPerMsg > 0 {
		m.CPUBound = cores / m.CPUPerMsg
	}
	m.Ceiling = min(insert.Rate, echo.Rate, fanout.Rate)
	if m.CPUBound > 0 {
		m.Ceiling = min(m.Ceiling, m.CPUBound)
	}
	return m
}

// Percent is achieved as a percentage of the ceiling (0 when there is none).
func (m Model) Percent(achieved float64) float64 {
	if m.Ceiling <= 0 {
		return 0
	}
	return 100 * achieved / m.Ceiling
}
