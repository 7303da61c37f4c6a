package main

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// consoleSocket signs username in and opens its console socket, past the CSRF hello.
func consoleSocket(t *testing.T, m *Main, username string) *websocket.Conn {
	t.Helper()
	hc := httpClient(t)
	csrf := login(t, hc, m.URL(), username, "password-"+username)
	return consoleWith(t, m, hc, csrf)
}

// consoleWith opens a console socket on node m with the browser session of hc (signed in on any
// node: cookies do not depend on the port), past the CSRF hello and the first render.
func consoleWith(t *testing.T, m *Main, hc *http.Client, csrf string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: hc.Jar}
	ws, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/console", http.Header{"Origin": {m.URL()}})
	if err != nil {
		t.Fatalf("console socket: %v (%v)", err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if err := ws.WriteJSON(map[string]any{"id": "hello-1", "cmd": "hello", "args": map[string]string{"csrf": csrf}}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f frame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("console hello: %v", err)
		}
		if f["type"] == "ops" { // the first render: both pumps are busy with this socket
			break
		}
	}
	return ws
}

// webGoroutines returns the stacks of the goroutines running code of agentd's web packages.
func webGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "agentd/web.") || strings.Contains(g, "agentd/web/") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseJoinsEverySocket: Main.Close returns only once both pumps of every customer and
// console socket have stopped, so none of them still reads from the pool Close closes last.
// Before, only the read pumps were waited for. It is not parallel: it looks at every goroutine
// of the test binary, right after Close returns, without waiting for anything.
func TestCloseJoinsEverySocket(t *testing.T) {
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 20 * time.Millisecond })
	u := newAgent(t, m, "cleo", 3)
	ready(t, m, u)
	customers := []*client{}
	for range 3 {
		c, _ := acceptedChat(t, m, u, nil)
		customers = append(customers, c)
	}
	consoles := []*websocket.Conn{consoleSocket(t, m, "cleo"), consoleSocket(t, m, "cleo")}
	if len(webGoroutines()) < 2*(len(customers)+len(consoles)) {
		t.Fatalf("expected the sockets' pumps to be running:\n%s", strings.Join(webGoroutines(), "\n\n"))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left := webGoroutines(); len(left) > 0 {
		t.Fatalf("%d goroutines of the web packages still running after Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	for _, c := range customers {
		c.wait("close", func() bool { return c.close != nil })
		if c.close.Code != websocket.CloseGoingAway {
			t.Fatalf("customer socket closed with %d, want 1001", c.close.Code)
		}
	}
}
