package web

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// limitListener starts a LimitListener on 127.0.0.1 with the given caps (and linger, when not
// zero) and returns it and the connections it accepts, in order.
func limitListener(t *testing.T, perAddr, max int, linger time.Duration) (*LimitListener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimitListener(LimitListenerDeps{Listener: ln, MaxConnsPerAddr: perAddr, MaxConns: max})
	if linger > 0 {
		l.linger = linger
	}
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	return l, accepted
}

// dialFrom connects to l from the local address ip (any 127/8 address is this machine).
func dialFrom(t *testing.T, l net.Listener, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// mustAccept returns the next accepted connection.
func mustAccept(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	return nil
}

// mustBeRefused checks that c, over a cap, is answered with a 503 that closes it, whether the
// client sent its request first or not.
func mustBeRefused(t *testing.T, c net.Conn, sendFirst bool) {
	t.Helper()
	if sendFirst {
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("refused connection: %v, want a 503", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("refused connection: %d close=%v %v, want 503 with Connection: close and Retry-After", resp.StatusCode, resp.Close, resp.Header)
	}
}

// TestLimitListenerPerAddr: one address gets MaxConnsPerAddr connections and a 503 beyond, while
// other addresses still get theirs; a place is free again once its connection is closed, once.
func TestLimitListenerPerAddr(t *testing.T) {
	t.Parallel()
	l, accepted := limitListener(t, 2, 0, 0)
	var held []net.Conn
	for range 2 {
		dialFrom(t, l, "127.0.0.2")
		held = append(held, mustAccept(t, accepted))
	}
	mustBeRefused(t, dialFrom(t, l, "127.0.0.2"), true)
	mustBeRefused(t, dialFrom(t, l, "127.0.0.2"), false)
	dialFrom(t, l, "127.0.0.3")
	other := mustAccept(t, accepted)
	if st := l.Stats(); st.Open != 3 || st.Refused[LimitPerAddr] != 2 || st.Refused[LimitNode] != 0 {
		t.Fatalf("stats %+v, want 3 open and 2 refused per address", st)
	}

	// Closing twice frees one place: the address gets exactly one connection more.
	_ = held[0].Close()
	_ = held[0].Close()
	dialFrom(t, l, "127.0.0.2")
	mustAccept(t, accepted)
	mustBeRefused(t, dialFrom(t, l, "127.0.0.2"), true)
	_ = other.Close()
	if st := l.Stats(); st.Open != 2 || st.Refused[LimitPerAddr] != 3 {
		t.Fatalf("stats %+v, want 2 open and 3 refused per address", st)
	}
}

// TestLimitListenerNode: past MaxConns every address is refused until a connection closes.
func TestLimitListenerNode(t *testing.T) {
	t.Parallel()
	l, accepted := limitListener(t, 10, 2, 0)
	dialFrom(t, l, "127.0.0.4")
	first := mustAccept(t, accepted)
	dialFrom(t, l, "127.0.0.5")
	mustAccept(t, accepted)
	mustBeRefused(t, dialFrom(t, l, "127.0.0.6"), true)
	_ = first.Close()
	dialFrom(t, l, "127.0.0.6")
	mustAccept(t, accepted)
	if st := l.Stats(); st.Open != 2 || st.Refused[LimitNode] != 1 || st.Refused[LimitPerAddr] != 0 {
		t.Fatalf("stats %+v, want 2 open and 1 refused for the node cap", st)
	}
}

// TestLimitListenerRefusalsBounded: at most MaxRefusing refusals are answered at once; past them
// a refused connection is closed without an answer, so refusing costs a bounded number of
// descriptors however fast clients connect.
func TestLimitListenerRefusalsBounded(t *testing.T) {
	t.Parallel()
	// Refusals last until their client closes, at the end of the test.
	l, accepted := limitListener(t, 1, 0, time.Minute)
	dialFrom(t, l, "127.0.0.7")
	mustAccept(t, accepted)
	refused := make([]net.Conn, MaxRefusing+8)
	for i := range refused {
		refused[i] = dialFrom(t, l, "127.0.0.7")
	}
	for i, c := range refused {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case i < MaxRefusing && (err != nil || resp.StatusCode != http.StatusServiceUnavailable):
			t.Fatalf("refusal %d: %v, want a 503", i, err)
		case i >= MaxRefusing && err == nil:
			t.Fatalf("refusal %d beyond MaxRefusing was answered %d, want it closed", i, resp.StatusCode)
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatalf("refusal %d: neither answered nor closed", i)
		}
	}
	if st := l.Stats(); st.Refused[LimitPerAddr] != MaxRefusing+8 || st.Open != 1 {
		t.Fatalf("stats %+v, want 1 open and %d refused", st, MaxRefusing+8)
	}
}
