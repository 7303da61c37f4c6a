package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Memory per idle customer connection (docs/benchmarks.md, "Connections and session starts"):
//
//	go test ./cmd/agentd -run '^$' -bench BenchmarkIdleConnMemory -benchtime 1x
//
// The clients run in a child process (this test binary again, TestMemClients), so the heap and
// stacks measured are the node's alone. AGENTD_MEM_CONNS sets how many sockets (2,000 by
// default); AGENTD_MEM_HEAP names a file for the node's heap profile taken at the measurement.

// memClientsEnv carries the node's websocket URL to the child process.
const memClientsEnv = "AGENTD_MEM_CLIENTS_URL"

// BenchmarkIdleConnMemory reports (HeapInuse+StackInuse growth)/N and goroutines per connection
// of N idle customer sockets on one node, with a started session and without.
func BenchmarkIdleConnMemory(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("AGENTD_MEM_CONNS")); err == nil && v > 0 {
		n = v
	}
	for _, started := range []bool{false, true} {
		b.Run(fmt.Sprintf("started=%v", started), func(b *testing.B) {
			m := startNode(b, newDB(b), func(c *Config) {
				c.Customer.StartsPerMinute, c.Customer.StartBurst = 1e6, 1e6
				c.Customer.ConnectsPerMinute, c.Customer.ConnectBurst = 1e6, 1e6
				c.HTTP.MaxConnsPerAddr, c.HTTP.MaxConns = 4*n, 4*n
			})
			for range b.N {
				before, after := measureIdle(b, m, n, started)
				per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
				b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "B/conn")
				b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
				b.ReportMetric(per(after.stack, before.stack), "stack-B/conn")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

type memUse struct {
	heap, stack uint64
	goroutines  int
}

func inUse() memUse {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memUse{ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()}
}

// measureIdle returns what the node holds before and after n clients opened their sockets.
func measureIdle(b *testing.B, m *Main, n int, started bool) (before, after memUse) {
	b.Helper()
	before = inUse()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), memClientsEnv+"="+strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/chat",
		"AGENTD_MEM_N="+strconv.Itoa(n), "AGENTD_MEM_START="+strconv.FormatBool(started))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		b.Fatal("the client process did not open its sockets")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitFor(b, "every socket registered", func() bool { return m.Sockets.Hub().Count() == n })
	after = inUse()
	if path := os.Getenv("AGENTD_MEM_HEAP"); path != "" {
		f, err := os.Create(path + "." + strconv.FormatBool(started))
		if err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	return before, after
}

// TestMemClients is the client side of BenchmarkIdleConnMemory, run in a child process: it opens
// AGENTD_MEM_N customer sockets (starting a session on each when AGENTD_MEM_START is true), keeps
// reading them as a browser would, prints "ready" and holds them until its stdin closes.
func TestMemClients(t *testing.T) {
	url := os.Getenv(memClientsEnv)
	if url == "" {
		t.Skip("the client process of BenchmarkIdleConnMemory")
	}
	n, _ := strconv.Atoi(os.Getenv("AGENTD_MEM_N"))
	start := os.Getenv("AGENTD_MEM_START") == "true"
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				ws, _, err := d.Dial(url, nil)
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = ws
				if start {
					if err := startOn(ws, i); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
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
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, ws := range conns {
		_ = ws.Close()
	}
	readers.Wait()
}

// startOn starts a session on ws and reads until its result.
func startOn(ws *websocket.Conn, i int) error {
	id := fmt.Sprintf("mem-start-%08d-%s", i, newID())
	b, _ := json.Marshal(map[string]any{"id": id, "cmd": "start", "args": map[string]any{"username": "Idle"}})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = ws.SetReadDeadline(time.Time{}) }()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			return err
		}
		if f["type"] == "result" && f.str("id") == id {
			if f["ok"] != true {
				return fmt.Errorf("start failed: %s", msg)
			}
			return nil
		}
	}
}
