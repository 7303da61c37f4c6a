package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
)

// Session starts over the real customer socket (docs/benchmarks.md, "Connections and session
// starts"); run on a durable cluster (TEST_DATABASE_URL of a localpg.Options{Durable: true} one):
//
//	go test ./cmd/agentd -run '^$' -bench BenchmarkSessionStarts -benchtime 1x
//
// Each of W workers opens a socket and starts a session, one after another; the sockets stay
// open (read and discarded, as a page does) until the end. It reports starts/s, the p50/p99 of
// start → result and of connect + start, and, read from Postgres after the node closed (so every
// backend flushed its statistics), transactions (xact_commit), write transactions (xids) and WAL
// fsyncs per start. AGENTD_STARTS sets how many sessions (2,000 by default).
func BenchmarkSessionStarts(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("AGENTD_STARTS")); err == nil && v > 0 {
		n = v
	}
	for _, workers := range []int{16, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for range b.N {
				benchStarts(b, n, workers)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// pgCounters are the cluster's and the database's counters that a start costs.
type pgCounters struct {
	xacts, xid, walSyncs, walBytes int64
}

func readCounters(b *testing.B, dbURL string) pgCounters {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var c pgCounters
	err = conn.QueryRow(ctx, `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		pg_current_xact_id()::text::bigint, (SELECT wal_sync FROM pg_stat_wal), (SELECT wal_bytes::bigint FROM pg_stat_wal)`).
		Scan(&c.xacts, &c.xid, &c.walSyncs, &c.walBytes)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchStarts(b *testing.B, n, workers int) {
	db := newDB(b)
	before := readCounters(b, db)
	m := NewMain()
	m.Config = Config{Addr: "127.0.0.1:0", DatabaseURL: db, LogFormat: "text"}
	m.Config.Customer.StartsPerMinute, m.Config.Customer.StartBurst = 1e6, 1e6
	m.Config.Customer.ConnectsPerMinute, m.Config.Customer.ConnectBurst = 1e6, 1e6
	m.Config.HTTP.MaxConnsPerAddr, m.Config.HTTP.MaxConns = 4*n, 4*n
	if err := m.Config.load(); err != nil {
		b.Fatal(err)
	}
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	var closeOnce sync.Once
	closeNode := func() { closeOnce.Do(func() { _ = m.Close() }) }
	b.Cleanup(closeNode)
	waitFor(b, "LISTEN connection", func() bool { return m.Listener.Connected() })

	wsURL := strings.Replace(m.URL(), "http://", "ws://", 1) + "/ws/chat"
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	startLat := make([]time.Duration, n)
	totalLat := make([]time.Duration, n)
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	b.ResetTimer()
	began := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				t0 := time.Now()
				ws, _, err := d.Dial(wsURL, nil)
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = ws
				t1 := time.Now()
				if err := startOn(ws, i); err != nil {
					errs <- err
					continue
				}
				startLat[i], totalLat[i] = time.Since(t1), time.Since(t0)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var readers sync.WaitGroup
	for _, ws := range conns {
		readers.Go(func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		})
	}
	// Every start's events reached the node's sockets' queues; the routing and queue-position
	// work it caused is done once the node closes, which also makes every backend flush its
	// statistics.
	closeNode()
	for _, ws := range conns {
		_ = ws.Close()
	}
	readers.Wait()
	after := readCounters(b, db)
	sort.Slice(startLat, func(i, j int) bool { return startLat[i] < startLat[j] })
	sort.Slice(totalLat, func(i, j int) bool { return totalLat[i] < totalLat[j] })
	b.ReportMetric(float64(n)/elapsed.Seconds(), "starts/s")
	b.ReportMetric(float64(startLat[n*50/100].Microseconds())/1000, "start-p50-ms")
	b.ReportMetric(float64(startLat[n*99/100].Microseconds())/1000, "start-p99-ms")
	b.ReportMetric(float64(totalLat[n*99/100].Microseconds())/1000, "connect+start-p99-ms")
	per := func(a, b int64) float64 { return float64(a-b) / float64(n) }
	b.ReportMetric(per(after.xacts, before.xacts), "xacts/start")
	b.ReportMetric(per(after.xid-1, before.xid), "write-xacts/start") // less the xid of the second reading
	b.ReportMetric(per(after.walSyncs, before.walSyncs), "wal-fsyncs/start")
	b.ReportMetric(per(after.walBytes, before.walBytes), "wal-B/start")
	if u, err := url.Parse(db); err == nil && testing.Verbose() {
		b.Logf("database %s", u.Path)
	}
}
