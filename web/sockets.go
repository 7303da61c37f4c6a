package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"agentd/chat"
)

// Sockets runs every websocket of a node: it upgrades the request, registers the connection with
// the hub, runs its two pumps and, at shutdown, closes them all with 1001 and waits for every
// pump to stop, so nothing uses the database pool after Main closes it. Websocket handlers are
// hijacked connections: http.Server.Shutdown does not wait for them, Sockets does.
type Sockets struct {
	hub     *Hub
	metrics *Metrics
	logger  *slog.Logger
	deep    *deepPool // the connections' handler work (conn.go)

	ctx    context.Context // cancelled at shutdown; parent of every connection's work
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed and the Add side of running
	closed bool
	// running counts connections from before their upgrade until both pumps have stopped.
	running sync.WaitGroup
}

// SocketsDeps is what Sockets is built from.
type SocketsDeps struct {
	Hub     *Hub
	Metrics *Metrics // may be nil
	Logger  *slog.Logger
}

// NewSockets returns the node's socket runner.
func NewSockets(d SocketsDeps) *Sockets {
	ctx, cancel := context.WithCancel(context.Background())
	return &Sockets{hub: d.Hub, metrics: d.Metrics, logger: d.Logger, deep: newDeepPool(), ctx: ctx, cancel: cancel}
}

// Hub returns the hub connections are registered with.
func (s *Sockets) Hub() *Hub { return s.hub }

// Subscriber is a surface's connection as the hub sees it: a *Conn with the surface's Notify,
// which turns a notification into marks on the connection. Notify must not block.
type Subscriber interface {
	Notify(n chat.Notification)
	Resync()
	Close(reason CloseReason)
}

// writeBuffers is the write buffer pool of every websocket of the process: a connection holds a
// write buffer only while it writes a frame, so an idle one holds none (gorilla keeps one per
// connection otherwise).
var writeBuffers = &sync.Pool{}

// readBuffer is every websocket's read buffer: customer frames are commands of a few hundred
// bytes.
const readBuffer = 1024

// Serve upgrades the request and runs the connection until it closes. open builds the surface's
// handler and subscriber for the new connection; it may refuse it by returning a close reason
// (after writing an explanation with Conn.WriteDirect). Serve returns after both pumps stopped and
// the connection left the hub.
func (s *Sockets) Serve(c echo.Context, opts ConnOptions, open func(*Conn) (Handler, Subscriber, *CloseReason)) error {
	run, err := s.upgrade(c, opts, open)
	if run != nil {
		run()
	}
	return err
}

// Detach is Serve for a surface that keeps nothing of the request once the socket is open: it
// returns as soon as the connection runs, so the HTTP handler's goroutine, its stack, the
// request and the server's per-connection state are freed instead of being held for the life of
// an idle socket; the pumps run in goroutines of their own, tracked by Shutdown as before. open
// must not keep c. ended, when not nil, runs after both pumps stopped and the connection left
// the hub (or when the connection was refused).
func (s *Sockets) Detach(c echo.Context, opts ConnOptions, open func(*Conn) (Handler, Subscriber, *CloseReason), ended func()) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return echo.NewHTTPError(http.StatusServiceUnavailable, "server shutting down")
	}
	s.running.Add(1) // held by the detached goroutine
	s.mu.Unlock()
	done := func() {
		if ended != nil {
			ended()
		}
		s.running.Done()
	}
	run, err := s.upgrade(c, opts, open)
	if run == nil {
		done()
		return err
	}
	go func() {
		defer done()
		defer func() {
			// The read pump ran under the server's recovery before it was detached; a panic in a
			// surface's handler still closes only its own connection.
			if r := recover(); r != nil {
				s.logger.Error("websocket connection panicked", "surface", opts.Surface, "panic", r)
			}
		}()
		run()
	}()
	return err
}

// upgrade upgrades the request and opens the connection; run, when not nil, runs it until it
// closes and then unregisters it.
func (s *Sockets) upgrade(c echo.Context, opts ConnOptions, open func(*Conn) (Handler, Subscriber, *CloseReason)) (run func(), err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "server shutting down")
	}
	s.running.Add(1)
	s.mu.Unlock()
	registered := false
	defer func() {
		if !registered {
			s.running.Done()
		}
	}()

	up := websocket.Upgrader{
		Subprotocols: opts.Subprotocols,
		// A small read buffer of its own: the HTTP server's 4 KiB reader is freed with the
		// handler (Detach); a larger frame is read straight into its own slice. Writes take a
		// buffer from the shared pool only while writing.
		ReadBufferSize:  readBuffer,
		WriteBufferPool: writeBuffers,
		// Origins are checked by each surface after the upgrade, so a refused page gets a
		// readable reason (an error frame and a close code) instead of a failed handshake.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(c.Response(), c.Request(), nil)
	if err != nil {
		return nil, nil // the upgrader answered already
	}
	conn := newConn(ws, opts, s.logger, s.metrics.Dropped, s.deep)
	h, sub, refused := open(conn)
	if refused != nil {
		conn.Close(*refused)
		return nil, nil
	}
	if !s.hub.Register(sub) {
		conn.Close(CloseGoingAway)
		return nil, nil
	}
	registered = true
	return func() {
		defer s.running.Done()
		defer s.hub.Unregister(sub)
		conn.run(s.ctx, h)
	}, nil
}

// Shutdown closes every websocket with 1001 (going away) so clients reconnect, possibly to
// another node, refuses new ones, stops the connections' work and waits (up to ctx) until every
// pump has stopped. Call it after the HTTP server stopped accepting.
func (s *Sockets) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hub.CloseAll(CloseGoingAway)
	s.cancel()
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
		s.deep.stop() // no pump asks for work any more: the workers are idle and end
	case <-ctx.Done():
		s.logger.Warn("websocket pumps still running at shutdown")
		go s.deep.stop() // the idle workers end now, the busy ones when their work is done
	}
}
