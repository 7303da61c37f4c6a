package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"agentd/agent"
	"agentd/chat"
)

// Benchmarks of the customer path on a real Postgres (results: docs/benchmarks.md). Run with
//
//	go test ./cmd/agentd -run '^$' -bench . -benchtime 2000x

// BenchmarkCustomerSend measures one customer message from the websocket frame to the
// acknowledgement, which is sent only after the transaction committed.
func BenchmarkCustomerSend(b *testing.B) {
	m := startNode(b, newDB(b), func(c *Config) { c.Customer.CommandsPerSecond, c.Customer.CommandBurst = 1e6, 1e6 })
	c, _ := startSession(b, m, nil)
	b.ResetTimer()
	for i := range b.N {
		mustOK(b, c.do("send_message", map[string]any{"text": fmt.Sprintf("message %d", i)}))
	}
}

// BenchmarkAgentToCustomer measures an agent message (Go API on node B) until the customer's socket
// on node A has it: commit, NOTIFY, LISTEN on the other node, catch-up read, websocket write.
func BenchmarkAgentToCustomer(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			db := newDB(b)
			a := startNode(b, db)
			other := a
			if nodes == 2 {
				other = startNode(b, db)
			}
			c, d := startSession(b, a, nil)
			agent := agentJoin(b, other, d.str("session_id"))
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				text := fmt.Sprintf("agent %d", i)
				start := time.Now()
				if _, err := other.Chat.Send(ctx, agent, "", text, ""); err != nil {
					b.Fatal(err)
				}
				c.waitEvent(text, func(ev frame) bool { return ev.str("content", "text") == text })
				lat = append(lat, time.Since(start))
				c.mu.Lock()
				c.frames = c.frames[:0] // keep the scan short
				c.mu.Unlock()
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// queuedChats starts n customer sessions in service through the Go API; the router queues them.
func queuedChats(b *testing.B, m *Main, service string, n int, seq *int) {
	b.Helper()
	for range n {
		*seq++
		if _, err := m.Chat.Start(context.Background(), chat.StartParams{
			CommandID: fmt.Sprintf("bench-start-%08d-0123456789abcdef", *seq), Service: service, Username: "Queued",
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func countWhere(b *testing.B, m *Main, query string) int {
	b.Helper()
	var n int
	if err := m.DB.Pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkRoutingDrain measures how fast the routers empty a queue: 200 chats wait while 20
// agents are not ready; the clock runs from the moment the agents go ready until every chat is
// offered. With two nodes, two routers compete for the same rows.
func BenchmarkRoutingDrain(b *testing.B) {
	const chats, agents = 200, 20
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			db := newDB(b)
			m := startNode(b, db)
			if nodes == 2 {
				startNode(b, db)
			}
			ctx := context.Background()
			users := make([]agent.User, agents)
			for i := range users {
				users[i] = newAgent(b, m, fmt.Sprintf("drain%02d", i), chats/agents)
			}
			seq := 0
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				queuedChats(b, m, "default", chats, &seq)
				b.StartTimer()
				for _, u := range users {
					ready(b, m, u)
				}
				deadline := time.Now().Add(time.Minute)
				for countWhere(b, m, `SELECT count(*) FROM interactions WHERE state = 'queued'`) > 0 {
					if time.Now().After(deadline) {
						b.Fatal("the queue did not drain in a minute")
					}
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				if n := countWhere(b, m, `SELECT count(*) FROM assignments WHERE state = 'offered'`); n != chats {
					b.Fatalf("%d offers for %d chats", n, chats)
				}
				for _, u := range users {
					if _, err := m.Agents.SetState(ctx, u, agent.StateNotReady, "Break"); err != nil {
						b.Fatal(err)
					}
				}
				// Clear the board for the next round without timing it.
				if _, err := m.DB.Pool.Exec(ctx, `WITH w AS (UPDATE assignments SET state = 'withdrawn' WHERE state = 'offered' RETURNING interaction_id)
					UPDATE interactions SET state = 'abandoned', ended_at = now() WHERE id IN (SELECT interaction_id FROM w)`); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(chats*b.N)/b.Elapsed().Seconds(), "chats/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRoutePassBacklog measures one routing pass while 2,000 chats wait and every agent is
// at capacity: the state of a contact center in overload, where the routers run on every queue
// change.
func BenchmarkRoutePassBacklog(b *testing.B) {
	m := startNode(b, newDB(b))
	ctx := context.Background()
	seq := 0
	for i := range 50 {
		u := newAgent(b, m, fmt.Sprintf("full%02d", i), 3)
		ready(b, m, u)
	}
	queuedChats(b, m, "default", 2000, &seq)
	deadline := time.Now().Add(time.Minute)
	for countWhere(b, m, `SELECT count(*) FROM assignments WHERE state = 'offered'`) < 150 {
		if time.Now().After(deadline) {
			b.Fatal("agents not filled in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		m.Router.RouteOnce(ctx)
	}
	b.StopTimer()
	if n := countWhere(b, m, `SELECT count(*) FROM interactions WHERE state = 'queued'`); n != 2000-150 {
		b.Fatalf("%d queued, want %d", n, 2000-150)
	}
}
