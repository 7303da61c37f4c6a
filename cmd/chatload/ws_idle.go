package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// serveIdleWS is the server side of the idle-connection ceiling, run in a process of its own so
// its memory is only the server's: a bare gorilla/websocket Upgrader (default buffers) whose
// handler blocks in ReadMessage, as a server waiting for its client does; /count says how many
// sockets are open. It prints its address on stdout and serves until killed.
func serveIdleWS() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var open atomic.Int64
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/idle", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		open.Add(1)
		defer open.Add(-1)
		defer c.Close()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, open.Load()) })
	fmt.Println(l.Addr().String())
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(l)
}

// measureIdleWS starts helper (a process running serveIdleWS), opens n websockets to it and
// reports the growth of its RSS per socket, in KiB, as Rate.
func measureIdleWS(helper *exec.Cmd, n int) (Ceiling, error) {
	c := Ceiling{Name: "idle websocket memory", Conns: n, Note: "bare gorilla/websocket server in its own process, default buffers, one goroutine per socket blocked in ReadMessage; KiB of RSS per socket"}
	out, err := helper.StdoutPipe()
	if err != nil {
		return c, err
	}
	if err := helper.Start(); err != nil {
		return c, err
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	sc := bufio.NewScanner(out)
	var addr string
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "127.0.0.1:") {
			addr = line
			break
		}
	}
	if addr == "" {
		return c, errors.New("idle websocket helper printed no address")
	}
	go func() {
		for sc.Scan() { // keep its stdout drained
		}
	}()
	count := func() int {
		resp, err := http.Get("http://" + addr + "/count")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var v int
		_, _ = fmt.Fscan(resp.Body, &v)
		return v
	}
	if count() != 0 {
		return c, errors.New("idle websocket helper does not answer")
	}
	pid := helper.Process.Pid
	before := statusField(pid, "VmRSS")
	start := time.Now()
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, cl := range conns {
			cl.Close()
		}
	}()
	for i := range n {
		d := websocket.Dialer{NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: clientIP(true, 3, i)}}).DialContext}
		cl, _, err := d.Dial("ws://"+addr+"/idle", nil)
		if err != nil {
			return c, fmt.Errorf("idle websocket %d: %w", i, err)
		}
		conns = append(conns, cl)
	}
	if err := waitUntil(context.Background(), 30*time.Second, func() bool { return count() == n }); err != nil {
		return c, errors.New("idle websocket helper did not see every socket")
	}
	after := statusField(pid, "VmRSS")
	c.Seconds = time.Since(start).Seconds()
	c.Rate = float64(after-before) / float64(n)
	return c, nil
}
