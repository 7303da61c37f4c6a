// Command agentd-load puts customer load on a running agentd over the real websocket protocol and
// reports throughput and acknowledgement latency. It also checks that nothing was lost: every
// customer must receive each of its own messages back as a transcript event, in order.
//
//	agentd-load -url http://127.0.0.1:8080 -customers 200 -messages 50 -rate 2
//
// The server's per-address limits apply to the tool too; run agentd with, for example,
// AGENTD_STARTS_PER_MINUTE=100000 AGENTD_COMMANDS_PER_SECOND=1000. Only loopback and private test
// hosts should ever be targets.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

type result struct {
	acks     []time.Duration
	sent     int
	received int
	err      error
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "agentd base URL")
	customers := flag.Int("customers", 100, "concurrent customer sessions")
	messages := flag.Int("messages", 20, "messages per customer")
	rate := flag.Float64("rate", 2, "messages per second per customer (the server drops frames past AGENTD_COMMANDS_PER_SECOND, 20 by default)")
	service := flag.String("service", "default", "service to start sessions in")
	flag.Parse()
	if *customers <= 0 || *messages <= 0 || *rate <= 0 || *customers > 20000 {
		fmt.Fprintln(os.Stderr, "agentd-load: customers (1-20000), messages and rate must be positive")
		os.Exit(2)
	}
	wsURL := strings.Replace(strings.Replace(*base, "https://", "wss://", 1), "http://", "ws://", 1) + "/ws/chat"
	results := make([]result, *customers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *customers {
		wg.Go(func() { results[i] = runCustomer(wsURL, *base, *service, *messages, *rate) })
		time.Sleep(2 * time.Millisecond) // ramp up instead of a thundering herd of handshakes
	}
	wg.Wait()
	elapsed := time.Since(start)

	var acks []time.Duration
	var sent, received, failed int
	var firstErr error
	for _, r := range results {
		acks = append(acks, r.acks...)
		sent += r.sent
		received += r.received
		if r.err != nil {
			failed++
			if firstErr == nil {
				firstErr = r.err
			}
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i] < acks[j] })
	pct := func(p int) time.Duration {
		if len(acks) == 0 {
			return 0
		}
		return acks[min(len(acks)-1, len(acks)*p/100)]
	}
	fmt.Printf("customers %d, messages sent %d, acknowledged %d, echoed back %d, failed sessions %d\n", *customers, sent, len(acks), received, failed)
	fmt.Printf("elapsed %s, throughput %.0f messages/s\n", elapsed.Round(time.Millisecond), float64(len(acks))/elapsed.Seconds())
	fmt.Printf("ack latency p50 %s p90 %s p99 %s max %s\n", pct(50), pct(90), pct(99), pct(100))
	if firstErr != nil {
		fmt.Println("first error:", firstErr)
	}
	if failed > 0 || received != sent || len(acks) != sent {
		fmt.Println("LOST OR FAILED: see above")
		os.Exit(1)
	}
}

// newID returns 128 random bits in hex, as chat-service.js's ids (a start id needs 128).
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runCustomer starts one session, sends messages at the given rate and waits until every
// acknowledgement and every echo arrived.
func runCustomer(wsURL, origin, service string, messages int, rate float64) result {
	var r result
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(wsURL, http.Header{"Origin": {origin}})
	if err != nil {
		r.err = err
		return r
	}
	defer ws.Close()
	var mu sync.Mutex
	pending := map[string]time.Time{}
	texts := map[string]bool{}
	done := make(chan error, 1)
	started := make(chan error, 1)
	startID := "start-" + newID()
	go func() {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			var f struct {
				Type  string          `json:"type"`
				ID    string          `json:"id"`
				OK    bool            `json:"ok"`
				Error json.RawMessage `json:"error"`
				Event struct {
					Kind    string `json:"kind"`
					Content struct {
						Text string `json:"text"`
					} `json:"content"`
					Party struct {
						Type string `json:"type"`
					} `json:"party"`
				} `json:"event"`
			}
			if err := ws.ReadJSON(&f); err != nil {
				done <- err
				return
			}
			mu.Lock()
			switch {
			case f.Type == "result" && f.ID == startID:
				if f.OK {
					started <- nil
				} else {
					started <- fmt.Errorf("start: %s", f.Error)
				}
			case f.Type == "result":
				if !f.OK {
					mu.Unlock()
					done <- fmt.Errorf("send: %s", f.Error)
					return
				}
				if t, ok := pending[f.ID]; ok {
					r.acks = append(r.acks, time.Since(t))
					delete(pending, f.ID)
				}
			case f.Type == "error":
				// rate_limited: frames over the connection's limit (AGENTD_COMMANDS_PER_SECOND)
				// were dropped unanswered, and their acks would never come.
				mu.Unlock()
				done <- fmt.Errorf("server: %s", f.Error)
				return
			case f.Type == "event" && f.Event.Kind == "message" && f.Event.Party.Type == "client":
				if texts[f.Event.Content.Text] {
					r.received++
					delete(texts, f.Event.Content.Text)
				}
			}
			finished := r.sent == messages && len(pending) == 0 && len(texts) == 0
			mu.Unlock()
			if finished {
				done <- nil
				return
			}
		}
	}()
	if err := ws.WriteJSON(map[string]any{"id": startID, "cmd": "start", "args": map[string]any{"service": service, "username": "load"}}); err != nil {
		r.err = err
		return r
	}
	if err := <-started; err != nil {
		r.err = err
		return r
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range messages {
		<-tick.C
		id, text := newID(), fmt.Sprintf("load message %d", i)
		mu.Lock()
		pending[id], texts[text] = time.Now(), true
		r.sent++
		mu.Unlock()
		if err := ws.WriteJSON(map[string]any{"id": id, "cmd": "send_message", "args": map[string]any{"text": text}}); err != nil {
			r.err = err
			return r
		}
	}
	select {
	case err := <-done:
		r.err = err
	case <-time.After(60 * time.Second):
		r.err = errors.New("timed out waiting for acknowledgements and echoes")
	}
	mu.Lock()
	defer mu.Unlock()
	return result{acks: r.acks, sent: r.sent, received: r.received, err: r.err}
}
