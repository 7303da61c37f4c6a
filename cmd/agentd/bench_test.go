package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// Benchmarks of the customer path on a real Postgres (results: docs/benchmarks.md). Run with
//
//	go test ./cmd/agentd -run '^$' -bench . -benchtime 2000x

// BenchmarkCustomerSend measures one customer message from the websocket frame to the
// acknowledgement, which is sent only after the transaction committed.
func BenchmarkCustomerSend(b *testing.B) {
	m := startNode(b, newDB(b), func(c *Config) { c.Web.CommandsPerSecond, c.Web.CommandBurst = 1e6, 1e6 })
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
