package web

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The listener's refusals.
const (
	// MaxRefusing bounds the refused connections answered at once. Each holds a descriptor for up
	// to refuseLinger; past this many a refused connection is closed without an answer (a reset),
	// so a flood of refusals cannot itself use up the descriptors the caps protect.
	MaxRefusing = 64
	// refuseLinger is how long a refused connection is kept after its 503 is written, reading what
	// the client sent: closing a socket with unread data makes the kernel send a reset, which may
	// destroy the 503 before the client has read it (net/http waits as long, for the same reason).
	refuseLinger = 500 * time.Millisecond
	// refuseDrain bounds what is read from a refused client meanwhile.
	refuseDrain = 64 << 10
)

// The refusal limits, as counted in ConnStats and the agentd_http_connections_refused_total
// metric.
const (
	LimitPerAddr = "per_address" // the client address had MaxConnsPerAddr connections open
	LimitNode    = "node"        // the node had MaxConns connections open
)

// refusal is the whole answer a connection over a cap gets: an HTTP response rather than a
// reset, so a browser, a balancer or a monitor sees why. Written before the request is read, it
// answers whatever the client sends first, a websocket handshake included.
var refusal = func() string {
	body := "Too many connections; try again later.\n"
	return "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Connection: close\r\n" +
		"Retry-After: 1\r\n\r\n" + body
}()

// ConnStats are a LimitListener's counts.
type ConnStats struct {
	Open    int               // connections open now, websockets included
	Refused map[string]uint64 // refused since start, by limit (LimitPerAddr, LimitNode)
}

// LimitListenerDeps is what a LimitListener is built from.
type LimitListenerDeps struct {
	Listener net.Listener
	// MaxConnsPerAddr caps the connections open from one client address (the TCP peer's IP, as
	// Echo's ExtractIPDirect sees it); MaxConns caps them all. Zero means no cap.
	MaxConnsPerAddr int
	MaxConns        int
	Logger          *slog.Logger
}

// LimitListener caps the connections a node holds open: per client address, so that one client
// cannot take what others need, and in all, below the process's descriptor limit, so that the
// database pool, the LISTEN connection and new clients still get one. A connection counts from
// its accept until it is closed, whatever it became: an idle keep-alive connection, a request
// being read, a websocket (a hijacked connection closes this listener's net.Conn too). One over
// a cap is answered with a short 503 and closed; it never reaches the HTTP server.
type LimitListener struct {
	net.Listener
	perAddr, max int
	logger       *slog.Logger
	linger       time.Duration // refuseLinger; tests hold refusals longer

	mu      sync.Mutex // guards open, byAddr, lastLog
	open    int
	byAddr  map[netip.Addr]int
	lastLog map[string]time.Time // refusals are logged once a minute per limit

	refusedPerAddr, refusedNode atomic.Uint64
	refusing                    chan struct{} // a slot per refusal being answered
	refusals                    sync.WaitGroup
}

// NewLimitListener wraps d.Listener.
func NewLimitListener(d LimitListenerDeps) *LimitListener {
	return &LimitListener{Listener: d.Listener, perAddr: d.MaxConnsPerAddr, max: d.MaxConns, logger: d.Logger, linger: refuseLinger,
		byAddr: map[netip.Addr]int{}, lastLog: map[string]time.Time{}, refusing: make(chan struct{}, MaxRefusing)}
}

// Accept returns the next connection within the caps; those over a cap are answered and closed
// here, and Accept waits for the next one.
func (l *LimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := peerAddr(c)
		if limit := l.acquire(addr); limit != "" {
			l.refuse(c, addr, limit)
			continue
		}
		return &limitedConn{Conn: c, l: l, addr: addr}, nil
	}
}

// Close stops accepting and waits for the refusals being answered (each ends when its client
// closes, or after refuseLinger).
func (l *LimitListener) Close() error {
	err := l.Listener.Close()
	l.refusals.Wait()
	return err
}

// Stats returns the current counts.
func (l *LimitListener) Stats() ConnStats {
	l.mu.Lock()
	open := l.open
	l.mu.Unlock()
	return ConnStats{Open: open, Refused: map[string]uint64{
		LimitPerAddr: l.refusedPerAddr.Load(), LimitNode: l.refusedNode.Load()}}
}

// peerAddr is the connection's client address. IPv4 clients of a dual-stack socket count as
// their IPv4 address; a connection without an IP (a test's pipe) counts as the zero address.
func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// acquire counts a new connection from addr, or returns the limit it is over.
func (l *LimitListener) acquire(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return LimitNode
	case l.perAddr > 0 && l.byAddr[addr] >= l.perAddr:
		return LimitPerAddr
	}
	l.open++
	l.byAddr[addr]++
	return ""
}

func (l *LimitListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr) // the map holds only addresses with open connections
	}
}

// refuse counts a refused connection and answers it with the 503, in the background so Accept
// goes on at once; when MaxRefusing are being answered already, it only closes it.
func (l *LimitListener) refuse(c net.Conn, addr netip.Addr, limit string) {
	if limit == LimitPerAddr {
		l.refusedPerAddr.Add(1)
	} else {
		l.refusedNode.Add(1)
	}
	l.logRefusal(addr, limit)
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	l.refusals.Go(func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(l.linger))
		if _, err := io.WriteString(c, refusal); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.CopyN(io.Discard, c, refuseDrain)
	})
}

func (l *LimitListener) logRefusal(addr netip.Addr, limit string) {
	if l.logger == nil {
		return
	}
	l.mu.Lock()
	now := time.Now()
	quiet := now.Sub(l.lastLog[limit]) < time.Minute
	if !quiet {
		l.lastLog[limit] = now
	}
	open, fromAddr := l.open, l.byAddr[addr]
	l.mu.Unlock()
	if !quiet {
		l.logger.Warn("refusing connections over the cap (logged once a minute)", "limit", limit,
			"remote_ip", addr.String(), "open", open, "open_from_ip", fromAddr)
	}
}

// limitedConn is an accepted connection; closing it frees its place, once.
type limitedConn struct {
	net.Conn
	l      *LimitListener
	addr   netip.Addr
	closed sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.l.release(c.addr) })
	return err
}

// CloseWrite passes half-closing on: net/http half-closes before closing a connection it answered
// without reading the whole request (a 413), so that the client reads the answer rather than a
// reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
