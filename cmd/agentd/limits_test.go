package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/agent"
	"agentd/web"
)

// rawConn is one client connection to the node, spoken to byte by byte: the tests below need
// to hold it idle, send a body slowly or not at all, and see exactly when the server answers or
// closes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// rawFrom connects to m from the local address ip (any 127/8 address is this machine).
func rawFrom(t *testing.T, m *Main, ip string) *rawConn {
	t.Helper()
	c, err := dialerFrom(net.ParseIP(ip)).Dial("tcp", m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw bytes.
func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// response reads the next response, with its body, within wait.
func (r *rawConn) response(wait time.Duration) (*http.Response, string, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// get makes a keep-alive GET on the connection and returns the status.
func (r *rawConn) get(path string) int {
	r.t.Helper()
	r.send("GET " + path + " HTTP/1.1\r\nHost: agentd\r\n\r\n")
	resp, _, err := r.response(5 * time.Second)
	if err != nil {
		r.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

// closedWithin reports whether the server closes the connection within wait.
func (r *rawConn) closedWithin(wait time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(wait))
	_, err := r.br.ReadByte()
	ne, timeout := errors.AsType[net.Error](err)
	return err != nil && !(timeout && ne.Timeout())
}

func mustRefused(t *testing.T, r *rawConn) {
	t.Helper()
	r.send("GET /healthz HTTP/1.1\r\nHost: agentd\r\n\r\n")
	resp, _, err := r.response(5 * time.Second)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("a connection over the cap: %v %v, want 503 with Connection: close", resp, err)
	}
}

// customerFrom opens a customer socket from the local address ip.
func customerFrom(t *testing.T, m *Main, ip string) (*client, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 5 * time.Second, NetDialContext: dialerFrom(net.ParseIP(ip)).DialContext}
	ws, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/chat", nil)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", err, resp)
	}
	return newClient(t, ws), nil
}

func scrapeMetrics(t *testing.T, m *Main) string {
	t.Helper()
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConnectionCaps (security probe finding 1, connection exhaustion): 19,988 idle keep-alive
// connections from one client used up the node's descriptors, and /readyz and new customer
// sockets timed out. Now one address gets AGENTD_MAX_CONNS_PER_ADDR connections, websockets
// included, and a 503 beyond; other addresses are still served; idle connections are closed
// after AGENTD_HTTP_IDLE_TIMEOUT.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	const perAddr, idle = 32, 2 * time.Second
	m := startNode(t, newDB(t), func(c *Config) {
		c.HTTP.MaxConnsPerAddr = perAddr
		c.HTTP.IdleTimeout = idle
	})

	// One client fills its share with keep-alive connections, each left idle after a request.
	held := make([]*rawConn, perAddr)
	for i := range held {
		held[i] = rawFrom(t, m, "127.0.3.1")
		if code := held[i].get("/healthz"); code != http.StatusOK {
			t.Fatalf("connection %d: %d", i, code)
		}
	}
	mustRefused(t, rawFrom(t, m, "127.0.3.1"))

	// Another address is served meanwhile: health, readiness and a customer socket.
	other := rawFrom(t, m, "127.0.3.2")
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := other.get(path); code != http.StatusOK {
			t.Fatalf("%s from another address: %d", path, code)
		}
	}
	c, err := customerFrom(t, m, "127.0.3.2")
	if err != nil {
		t.Fatalf("customer socket from another address: %v", err)
	}
	mustOK(t, c.do("start", map[string]any{"username": "Carol"}))
	if body := scrapeMetrics(t, m); !strings.Contains(body, `agentd_http_connections_refused_total{limit="per_address"} 1`) {
		t.Fatal("metrics lack the refused connection")
	}

	// The idle connections are closed after the idle timeout, and their address is served again.
	for i, r := range held {
		if !r.closedWithin(idle + 5*time.Second) {
			t.Fatalf("idle connection %d still open after the idle timeout", i)
		}
	}
	if code := rawFrom(t, m, "127.0.3.1").get("/healthz"); code != http.StatusOK {
		t.Fatalf("the address after its idle connections closed: %d", code)
	}

	// Websockets count: an address with its share in sockets gets no more connections until
	// one closes.
	sockets := make([]*client, perAddr)
	for i := range sockets {
		if sockets[i], err = customerFrom(t, m, "127.0.3.3"); err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
	}
	if _, err := customerFrom(t, m, "127.0.3.3"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a socket over the cap: %v, want a 503", err)
	}
	mustRefused(t, rawFrom(t, m, "127.0.3.3"))
	_ = sockets[0].ws.Close()
	waitFor(t, "a connection in the closed socket's place", func() bool {
		return rawFrom(t, m, "127.0.3.3").get("/healthz") == http.StatusOK
	})
}

// TestSlowBodyIsCutOff (security probe finding 1): a request body that trickles in is cut off by
// the read timeout and its connection freed; before, 300 slow bodies were still held after 40 s.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	m := startNode(t, newDB(t), func(c *Config) { c.HTTP.ReadTimeout = readTimeout })
	before := m.ln.(*web.LimitListener).Stats().Open
	r := rawFrom(t, m, "127.0.3.4")
	start := time.Now()
	r.send("POST /login HTTP/1.1\r\nHost: agentd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 100 ms: 100 s for the whole body
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := r.c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	resp, _, err := r.response(10 * time.Second)
	took := time.Since(start)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("a body sent at 10 bytes a second was still being read after 10 s")
	}
	if err == nil && resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("a slow body: %d %v, want 408 (or the connection closed)", resp.StatusCode, resp.Header)
	}
	if took < readTimeout/2 || took > readTimeout+5*time.Second {
		t.Fatalf("cut off after %v, want about the read timeout (%v)", took, readTimeout)
	}
	if !r.closedWithin(5 * time.Second) {
		t.Fatal("the slow connection stays open")
	}
	waitFor(t, "the slow connection's place", func() bool { return m.ln.(*web.LimitListener).Stats().Open <= before })
}

// multipartFiles lists the temporary files net/http writes multipart uploads to.
func multipartFiles(t *testing.T) map[string]bool {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(os.TempDir(), "multipart-*"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, n := range names {
		found[n] = true
	}
	return found
}

// TestUploadLimits (security probe finding 2, unauthenticated uploads spill to disk): a 286 MB
// multipart POST /login wrote 284 MB to /tmp/multipart-* before the CSRF check ran. Now every
// route has a body limit: a Content-Length over it is 413 before the body is sent, a chunked
// body is cut at the limit, and nothing reaches the disk.
func TestUploadLimits(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))

	t.Run("ErrContentLength", func(t *testing.T) {
		for _, typ := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
			r := rawFrom(t, m, "127.0.3.5")
			r.send("POST /login HTTP/1.1\r\nHost: agentd\r\nAccept: text/html\r\nContent-Type: " + typ + "\r\nContent-Length: 286000000\r\n\r\n")
			resp, body, err := r.response(3 * time.Second)
			if err != nil {
				t.Fatalf("%s: no answer before the body was sent: %v", typ, err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
				t.Fatalf("%s: %d close=%v, want 413 closing the connection", typ, resp.StatusCode, resp.Close)
			}
			if strings.HasPrefix(typ, "application/x-www-form-urlencoded") && !strings.Contains(body, "at most 64 KiB") {
				t.Fatalf("the sign-in form's 413 is not a readable page: %s", body)
			}
		}
	})

	t.Run("ErrChunkedMultipart", func(t *testing.T) {
		before := multipartFiles(t)
		r := rawFrom(t, m, "127.0.3.6")
		r.send("POST /login HTTP/1.1\r\nHost: agentd\r\nContent-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n")
		// 40 MB of a file part, more than net/http keeps in memory (32 MB), and no end: without
		// a limit the server would sit on the file it writes, waiting for the rest.
		sent := make(chan struct{})
		_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		go func() {
			defer close(sent)
			part := "--XX\r\nContent-Disposition: form-data; name=\"username\"; filename=\"a\"\r\n\r\n"
			chunk := func(s string) string { return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n" }
			if _, err := io.WriteString(r.c, chunk(part)); err != nil {
				return
			}
			data := chunk(strings.Repeat("x", 1<<20))
			for range 40 {
				if _, err := io.WriteString(r.c, data); err != nil {
					return // the server answered and closed
				}
			}
		}()
		// The answer is read while the upload goes on: once the server closes, a reset may
		// destroy an answer not read yet. The disk is checked while the connection is still
		// open, since net/http removes an upload's file when its request ends.
		resp, _, err := r.response(5 * time.Second)
		<-sent
		for f := range multipartFiles(t) {
			if !before[f] {
				t.Errorf("the upload reached the disk: %s", f)
			}
		}
		if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("a chunked 40 MB upload: %v %v, want 413", resp, err)
		}
	})

	t.Run("ErrEveryRouteHasALimit", func(t *testing.T) {
		param := regexp.MustCompile(`:[a-z]+|\*`)
		n := 0
		for _, route := range m.Server.Routes() {
			method, path, _ := strings.Cut(route, " ")
			if method != http.MethodGet && method != http.MethodPost {
				continue // Echo's not-found routes
			}
			path = param.ReplaceAllString(path, "x")
			r := rawFrom(t, m, "127.0.3.7")
			// More than any form takes; the client waits for the answer before sending it.
			r.send(method + " " + path + " HTTP/1.1\r\nHost: agentd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\n")
			resp, _, err := r.response(3 * time.Second)
			if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s %s with a 2 MB body: %v %v, want 413 before the body is sent", method, path, resp, err)
			}
			n++
		}
		if n < 20 {
			t.Fatalf("only %d routes checked", n)
		}
	})

	t.Run("OK_FormsWithinTheirLimits", func(t *testing.T) {
		root := newAdminUser(t, m, "uploads-admin", "uploads-admin-password", agent.RoleAdmin)
		admin := newAdminClient(t, m, &root)
		// The service form carries a whole strategy: 180 KB of routed UserData is accepted.
		var lines []string
		for i := range 60 {
			lines = append(lines, fmt.Sprintf("Key%02d=%s", i, strings.Repeat("v", 3000)))
		}
		resp, body := admin.post("/admin/services/default", url.Values{"_csrf": {admin.csrf}, "display_name": {"Default"}, "enabled": {"on"},
			"routed_userdata": {strings.Join(lines, "\n")}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a 180 KB strategy: %d %s", resp.StatusCode, body)
		}
		if _, st := serviceByName(t, m, "default"); len(st.RoutedUserData) != 60 {
			t.Fatalf("%d routed keys saved, want 60", len(st.RoutedUserData))
		}
		// Other admin forms are small.
		resp, body = admin.post("/admin/canned", url.Values{"_csrf": {admin.csrf}, "title": {"Big"}, "body": {strings.Repeat("b", 100<<10)}})
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 64 KiB") {
			t.Fatalf("a 100 KiB canned response: %d", resp.StatusCode)
		}
	})
}

// TestWebsocketOutlivesHTTPTimeouts (security probe finding 1): the HTTP server's read, write and
// idle timeouts end plain connections, never a websocket. A websocket is hijacked, and gorilla
// clears the server's deadlines on its connection when it upgrades; from then on only the pumps'
// own deadlines (pongWait, writeWait) apply.
func TestWebsocketOutlivesHTTPTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	m := startNode(t, newDB(t), func(c *Config) {
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout, c.HTTP.IdleTimeout = timeout, timeout, timeout
	})
	customer, _ := startSession(t, m, nil)
	u := newAgent(t, m, "otto", 1)
	token, csrf, err := m.Accounts.StartWebSession(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/console",
		http.Header{"Cookie": {"agentd_session=" + token}, "Origin": {m.URL()}})
	if err != nil {
		t.Fatalf("console socket: %v (%v)", err, resp)
	}
	console := newClient(t, ws)
	mustOK(t, console.do("hello", map[string]any{"csrf": csrf}))
	plain := rawFrom(t, m, "127.0.0.1")
	if code := plain.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}

	time.Sleep(3 * timeout) // idle, past every HTTP timeout
	if !plain.closedWithin(time.Second) {
		t.Fatal("an idle keep-alive connection outlived the idle timeout: the timeouts are not in force")
	}
	// Both sockets still read and write.
	mustOK(t, customer.do("send_message", map[string]any{"text": "still here"}))
	mustOK(t, console.do("set_state", map[string]any{"state": "ready"}))
}
