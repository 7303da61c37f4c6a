package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"agentd/chat"
)

// The limits of every websocket, named as in gorilla's chat example.
const (
	// writeWait bounds every write: a browser that cannot take a frame in this time is dropped.
	writeWait = 10 * time.Second
	// pongWait is how long a connection may stay silent (no frame, no pong) before it is closed.
	pongWait = 60 * time.Second
	// pingPeriod must be shorter than pongWait so a healthy client always answers in time.
	pingPeriod = 25 * time.Second
	// sendQueue bounds the frames (command results, errors) waiting for the write pump.
	sendQueue = 64
	// maxPendingEvents bounds the events handed over in memory; past it the connection re-reads
	// from Postgres instead, so nothing is lost.
	maxPendingEvents = 256
	// maxTypingKeys bounds the typing notifications kept while the write pump is busy (the latest
	// per key); past it new ones are shed: typing is the first thing dropped under load.
	maxTypingKeys = 16
	// retryAfter is how long a connection waits to refresh again after a refresh failed (the
	// database was briefly unreachable, usually).
	retryAfter = time.Second
	// refreshTimeout bounds one refresh, database reads included.
	refreshTimeout = 10 * time.Second
	// closeLinger is how long a connection closed for flooding keeps reading, and discarding,
	// after its close frame, waiting for the client's: closing a socket with unread data resets
	// it, and the reset can destroy the close frame before the client reads it.
	closeLinger = 500 * time.Millisecond
)

// CloseReason is a close code and the reason text sent with it. Every reason a socket is closed
// for is one of the named values below (docs/protocol.md).
type CloseReason struct {
	Code int
	Text string
}

// The close reasons.
var (
	CloseNormal           = CloseReason{websocket.CloseNormalClosure, ""}
	CloseGoingAway        = CloseReason{websocket.CloseGoingAway, "server shutting down"}
	CloseTooSlow          = CloseReason{websocket.CloseTryAgainLater, "too slow"}
	CloseFrameTooLarge    = CloseReason{websocket.CloseMessageTooBig, "frame_too_large"}
	CloseOriginNotAllowed = CloseReason{websocket.ClosePolicyViolation, "origin_not_allowed"}
	CloseCSRF             = CloseReason{websocket.ClosePolicyViolation, "csrf"}
	CloseAccountDisabled  = CloseReason{websocket.ClosePolicyViolation, "account disabled"}
	CloseSessionEnded     = CloseReason{websocket.ClosePolicyViolation, "session ended"}

	// CloseRateLimited closes a connection that keeps sending over its frame limit
	// (framelimit.go); unlike after origin_not_allowed, the client may reconnect after a pause.
	CloseRateLimited = CloseReason{websocket.ClosePolicyViolation, "rate_limited"}
)

// ErrSocket wraps a failed write: the socket is gone and the connection ends.
var ErrSocket = errors.New("socket write failed")

// Mark says that something a connection shows may have changed: Kind is what (events, side
// channel, queue, agent), Key which interaction it is about ("" for the connection's own, such as
// the agent's presence).
type Mark struct {
	Kind chat.NotificationKind
	Key  string
}

// Dirty is everything a connection has to catch up on, taken by the write pump in one piece.
type Dirty struct {
	// Resync means anything may have changed (the LISTEN connection came back, or this is the
	// first refresh): the handler re-reads all it shows.
	Resync bool
	marks  map[Mark]bool
	events map[string][]chat.Event // committed events handed over in memory, by interaction
	nEvent int
	typing map[string]chat.Typing // the latest typing notification per key
}

// Has reports whether kind changed for key (always true after a resync).
func (d *Dirty) Has(kind chat.NotificationKind, key string) bool {
	return d.Resync || d.marks[Mark{kind, key}]
}

// Keys returns the keys marked with kind.
func (d *Dirty) Keys(kind chat.NotificationKind) []string {
	var keys []string
	for m := range d.marks {
		if m.Kind == kind {
			keys = append(keys, m.Key)
		}
	}
	return keys
}

// Events returns the events handed over for interaction key, in arrival order. They may have
// gaps or repeat what was sent: the handler reads what is missing from Postgres.
func (d *Dirty) Events(key string) []chat.Event { return d.events[key] }

// Typing returns the latest typing notification per key.
func (d *Dirty) Typing() map[string]chat.Typing { return d.typing }

func (d *Dirty) empty() bool {
	return !d.Resync && len(d.marks) == 0 && len(d.events) == 0 && len(d.typing) == 0
}

func (d *Dirty) mark(m Mark) {
	if d.marks == nil {
		d.marks = map[Mark]bool{}
	}
	d.marks[m] = true
}

// merge adds what o says back into d, for a refresh that failed: every mark again, and events
// that were handed over as a mark to read them from Postgres. Typing that a newer notification
// superseded meanwhile is dropped.
func (d *Dirty) merge(o Dirty) {
	d.Resync = d.Resync || o.Resync
	for m := range o.marks {
		d.mark(m)
	}
	for key := range o.events {
		d.mark(Mark{chat.NotifyEvents, key})
	}
	for key, t := range o.typing {
		if _, newer := d.typing[key]; !newer {
			if d.typing == nil {
				d.typing = map[string]chat.Typing{}
			}
			d.typing[key] = t
		}
	}
}

// Handler is a surface's side of a connection. HandleFrame runs in the read pump, one frame at a
// time and in order; Flush and Tick run in the write pump, the connection's only writer.
type Handler interface {
	// HandleFrame handles one frame from the client.
	HandleFrame(ctx context.Context, typ int, frame []byte)
	// Flush brings the client up to date with what changed, writing with Conn.Write. An error
	// wrapping ErrSocket ends the connection; any other error means the refresh failed (the
	// database, usually): the core gives d back, merged with whatever arrived meanwhile, and
	// flushes again after retryAfter, so nothing marked is ever lost.
	Flush(ctx context.Context, d Dirty) error
}

// Ticker is a Handler that also wants Tick called every ConnOptions.TickEvery (the console's
// heartbeat), in the write pump.
type Ticker interface {
	Tick(ctx context.Context)
}

// ConnOptions are a surface's settings for its connections.
type ConnOptions struct {
	Surface      string   // metrics and logs: "customer", "console"
	Subprotocols []string // offered by the server in the handshake
	// ReadLimit is the largest frame read; a larger one closes the socket with 1009
	// (CloseFrameTooLarge).
	ReadLimit int64
	// WriteWait bounds every write and the wait for room in the send queue (writeWait when 0).
	WriteWait time.Duration
	// TickEvery is the period of Ticker.Tick (none when 0).
	TickEvery time.Duration
	// Held connections flush nothing until Release (the console waits for its CSRF hello);
	// marks are kept meanwhile.
	Held bool
	// FramesPerSecond and FrameBurst limit what the client sends: every data frame and ping
	// counts, whatever it holds, before it is read into memory or decoded. A frame over the limit
	// is dropped unanswered; the client is told so with one rate_limited error frame a second at
	// most, and a client that keeps exceeding is closed with CloseRateLimited (framelimit.go).
	// Zero means no limit (the core's own tests).
	FramesPerSecond float64
	FrameBurst      int
}

// outFrame is a queued frame, or a request to close once everything before it was written.
type outFrame struct {
	data  []byte
	close *CloseReason
}

// Conn is one websocket: exactly one read pump, which hands frames to the handler, and one write
// pump, the only writer, which sends queued results and runs the handler's refreshes. Nothing
// that notifies a connection ever waits for it: Mark, HandOver, SetTyping and Resync record and
// signal. A client that does not read is disconnected (CloseTooSlow), never waited for. Close
// happens once, with a named reason; Serve returns only after both pumps have stopped.
type Conn struct {
	id     string
	ws     *websocket.Conn
	opts   ConnOptions
	logger *slog.Logger
	onDrop func() // counts slow connections dropped

	send    chan *outFrame // pointers: the queue's 64 slots cost 512 bytes, not 2 KiB, on every socket
	wake    chan struct{}  // capacity 1: "there is something to catch up on"
	done    chan struct{}
	closing sync.Once
	held    atomic.Bool
	deep    *deepPool     // runs the handler's work off the pumps' stacks
	limit   *frameLimiter // read pump only
	linger  time.Time     // read pump only: closed by the read pump, which drains the socket until then

	mu    sync.Mutex // guards dirty
	dirty Dirty
}

func newConn(ws *websocket.Conn, opts ConnOptions, logger *slog.Logger, onDrop func(), deep *deepPool) *Conn {
	if opts.WriteWait == 0 {
		opts.WriteWait = writeWait
	}
	c := &Conn{id: NewToken()[:16], ws: ws, opts: opts, onDrop: onDrop, deep: deep, limit: newFrameLimiter(opts.FramesPerSecond, opts.FrameBurst),
		send: make(chan *outFrame, sendQueue), wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.logger = logger.With("conn_id", c.id, "surface", opts.Surface)
	c.held.Store(opts.Held)
	return c
}

// ID returns the connection's id (as logged under conn_id).
func (c *Conn) ID() string { return c.id }

// Logger returns the connection's logger.
func (c *Conn) Logger() *slog.Logger { return c.logger }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Signal wakes the write pump.
func (c *Conn) Signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Hold stops the connection's flushes until Release; marks, events handed over and typing are
// kept meanwhile (a customer start holds its socket while it commits, so the events it
// announces cannot overtake its result).
func (c *Conn) Hold() { c.held.Store(true) }

// Release lets a held connection flush, starting with everything marked so far.
func (c *Conn) Release() {
	c.held.Store(false)
	c.Signal()
}

// Mark records that something changed and wakes the write pump. It never blocks.
func (c *Conn) Mark(marks ...Mark) {
	c.mu.Lock()
	for _, m := range marks {
		c.dirty.mark(m)
	}
	c.mu.Unlock()
	c.Signal()
}

// HandOver passes committed events of interaction key in memory, so the write pump need not read
// them back; past maxPendingEvents it marks them to be read from Postgres instead.
func (c *Conn) HandOver(key string, events []chat.Event) {
	c.mu.Lock()
	d := &c.dirty
	if len(events) == 0 || d.nEvent+len(events) > maxPendingEvents {
		d.mark(Mark{chat.NotifyEvents, key})
	} else {
		if d.events == nil {
			d.events = map[string][]chat.Event{}
		}
		d.events[key] = append(d.events[key], events...)
		d.nEvent += len(events)
	}
	c.mu.Unlock()
	c.Signal()
}

// SetTyping records the latest typing notification for key; when too many keys wait already it
// is shed.
func (c *Conn) SetTyping(key string, t chat.Typing) {
	c.mu.Lock()
	d := &c.dirty
	if _, ok := d.typing[key]; ok || len(d.typing) < maxTypingKeys {
		if d.typing == nil {
			d.typing = map[string]chat.Typing{}
		}
		d.typing[key] = t
	}
	c.mu.Unlock()
	c.Signal()
}

// Resync marks everything: the handler re-reads all it shows. The hub calls it after the LISTEN
// connection came back, since the notifications sent meanwhile are lost.
func (c *Conn) Resync() {
	c.mu.Lock()
	c.dirty.Resync = true
	c.mu.Unlock()
	c.Signal()
}

func (c *Conn) take() Dirty {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirty
	c.dirty = Dirty{}
	return d
}

func (c *Conn) giveBack(d Dirty) {
	c.mu.Lock()
	c.dirty.merge(d)
	c.mu.Unlock()
}

// Send queues a frame for the write pump (results and errors, written in order). Only the read
// pump sends, one frame per command, so a full queue makes the read pump wait: back-pressure on
// the very client that sends too fast. A client that does not drain its socket for WriteWait is
// disconnected rather than waited for any longer.
func (c *Conn) Send(v any) {
	b, err := MarshalFrame(v)
	if err != nil {
		c.logger.Error("encode frame", "err", err)
		return
	}
	c.enqueue(&outFrame{data: b})
}

// CloseAfterSend closes the connection with reason once every frame queued before is written.
func (c *Conn) CloseAfterSend(reason CloseReason) { c.enqueue(&outFrame{close: &reason}) }

func (c *Conn) enqueue(f *outFrame) {
	select {
	case c.send <- f:
		return
	case <-c.done:
		return
	default:
	}
	t := time.NewTimer(c.opts.WriteWait)
	defer t.Stop()
	select {
	case c.send <- f:
	case <-c.done:
	case <-t.C:
		c.dropSlow("send queue full")
	}
}

// dropSlow closes the connection of a client that did not take its frames for WriteWait, with
// CloseTooSlow, and counts it, once: a send queue that stayed full and a write that timed out are
// the same slow consumer.
func (c *Conn) dropSlow(cause string) {
	c.closing.Do(func() {
		c.logger.Warn("dropping slow connection", "cause", cause)
		if c.onDrop != nil {
			c.onDrop()
		}
		c.shut(CloseTooSlow)
	})
}

// Close sends a close frame (best effort) and closes the socket, once. Both pumps then stop.
func (c *Conn) Close(reason CloseReason) {
	c.closing.Do(func() { c.shut(reason) })
}

func (c *Conn) shut(reason CloseReason) {
	msg := websocket.FormatCloseMessage(reason.Code, reason.Text)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	close(c.done)
	_ = c.ws.Close()
}

// closeLingering is Close for the read pump when the client is still sending (a flood): the
// close frame goes out and the write pump stops, but the socket stays open for the read pump to
// drain for up to closeLinger (lingerAndClose), so the client reads the close frame.
func (c *Conn) closeLingering(reason CloseReason) {
	c.closing.Do(func() {
		msg := websocket.FormatCloseMessage(reason.Code, reason.Text)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		close(c.done)
		c.linger = time.Now().Add(closeLinger)
		_ = c.ws.SetReadDeadline(c.linger)
	})
}

// lingerAndClose reads and discards what the client still sends, until its close frame, the end
// of its stream or closeLinger, then closes the socket (read pump only).
func (c *Conn) lingerAndClose() {
	_ = c.ws.SetReadDeadline(c.linger)
	for {
		_, r, err := c.ws.NextReader()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			break
		}
	}
	_ = c.ws.Close()
}

// Write writes one frame now. Only the write pump (Flush, Tick) may call it.
func (c *Conn) Write(v any) error {
	b, err := MarshalFrame(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	return c.writeRaw(b)
}

func (c *Conn) writeRaw(b []byte) error { return c.write(websocket.TextMessage, b) }

// WriteFrame writes an encoded frame now (one encoded once for several sockets). Only the write
// pump may call it.
func (c *Conn) WriteFrame(b []byte) error { return c.writeRaw(b) }

// write writes one message within WriteWait. A write that times out means the client took
// nothing for that long: it is dropped as too slow (the stream is broken by then, so the client
// gets no close frame, only the end of its socket).
func (c *Conn) write(typ int, b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteWait))
	if err := c.ws.WriteMessage(typ, b); err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			c.dropSlow("write timed out")
		}
		return fmt.Errorf("%w: %w", ErrSocket, err)
	}
	return nil
}

// WriteDirect writes a frame before the pumps run (a refusal explained before closing).
func (c *Conn) WriteDirect(v any) { _ = c.Write(v) }

// run runs both pumps until the socket closes, and returns after both have stopped.
func (c *Conn) run(ctx context.Context, h Handler) {
	var wg sync.WaitGroup
	wg.Go(func() { c.writePump(ctx, h) })
	c.readPump(ctx, h)
	wg.Wait()
}

func (c *Conn) readPump(ctx context.Context, h Handler) {
	defer c.Close(CloseNormal)
	c.ws.SetReadLimit(c.opts.ReadLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error {
		if !c.linger.IsZero() {
			return nil // the deadline is closeLinger's now
		}
		return c.ws.SetReadDeadline(time.Now().Add(pongWait))
	})
	c.ws.SetPingHandler(c.pong)
	for {
		typ, frame, admitted, err := c.next()
		if !c.linger.IsZero() {
			c.lingerAndClose()
			return
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.Close(CloseFrameTooLarge)
			} else if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				c.logger.Debug("read ended", "err", err)
			}
			return
		}
		if admitted {
			c.deep.run(func() { h.HandleFrame(ctx, typ, frame) })
		}
	}
}

// next reads the next frame (read pump only). The frame is counted on its header, before its
// payload is read: one over the limit is skipped without being buffered, however large, and
// never reaches the handler.
func (c *Conn) next() (typ int, frame []byte, admitted bool, err error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, false, err
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	if !c.admit() {
		_, err = io.Copy(io.Discard, r)
		return 0, nil, false, err
	}
	frame, err = io.ReadAll(r)
	return typ, frame, err == nil, err
}

// admit counts one frame from the client against the connection's frame limit and reports
// whether it may be read (read pump only). Over the limit, the frame is dropped; the client
// learns why at most once a second, and is closed once it keeps exceeding.
func (c *Conn) admit() bool {
	switch c.limit.admit(time.Now()) {
	case frameRead:
		return true
	case frameDropNotify:
		c.Send(Error("rate_limited", "Too many frames: frames over the limit are dropped unanswered. Slow down."))
	case frameClose:
		c.logger.Info("closing a connection that keeps exceeding its frame limit")
		c.closeLingering(CloseRateLimited)
	}
	return false
}

// pong answers a ping as gorilla's default handler does, if the ping is within the frame limit:
// a flood of pings would otherwise be answered one for one, like any other frame.
func (c *Conn) pong(data string) error {
	if !c.admit() {
		return nil
	}
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.opts.WriteWait))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return nil
	}
	return err
}

func (c *Conn) writePump(ctx context.Context, h Handler) {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	var tick <-chan time.Time
	ticker, _ := h.(Ticker)
	if ticker != nil && c.opts.TickEvery > 0 {
		t := time.NewTicker(c.opts.TickEvery)
		defer t.Stop()
		tick = t.C
	}
	defer c.Close(CloseNormal)
	var retry <-chan time.Time
	for {
		// Results go first: a command's answer must not wait behind a refresh, and the answer to
		// start or restore must reach the client before the events it announces.
		if !c.drainSend() {
			return
		}
		select {
		case <-c.done:
			return
		case f := <-c.send:
			if !c.writeOut(f) {
				return
			}
		case <-c.wake:
			if !c.drainSend() || !c.flush(ctx, h, &retry) {
				return
			}
		case <-retry:
			retry = nil
			if !c.flush(ctx, h, &retry) {
				return
			}
		case <-tick:
			c.deep.run(func() { ticker.Tick(ctx) })
		case <-ping.C:
			if err := c.write(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (c *Conn) drainSend() bool {
	for {
		select {
		case f := <-c.send:
			if !c.writeOut(f) {
				return false
			}
		default:
			return true
		}
	}
}

func (c *Conn) writeOut(f *outFrame) bool {
	if f.close != nil {
		c.Close(*f.close)
		return false
	}
	if err := c.writeRaw(f.data); err != nil {
		c.logger.Debug("write failed", "err", err)
		return false
	}
	return true
}

// flush takes what is dirty and hands it to the handler. A failed refresh gives everything back
// and schedules a retry; it reports false only when the socket is gone.
func (c *Conn) flush(ctx context.Context, h Handler, retry *<-chan time.Time) bool {
	if c.held.Load() {
		return true // the marks stay until Release
	}
	d := c.take()
	if d.empty() {
		return true
	}
	fctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	var err error
	c.deep.run(func() { err = h.Flush(fctx, d) })
	cancel()
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrSocket):
		c.logger.Debug("write failed", "err", err)
		return false
	}
	if ctx.Err() == nil {
		c.logger.Warn("refresh failed; retrying", "err", err, "retry_in", retryAfter)
	}
	c.giveBack(d)
	if *retry == nil {
		*retry = time.After(retryAfter)
	}
	return true
}

// deepPool runs a handler's command or refresh (database reads, commits, encoding: deep stacks)
// on another goroutine while the pump that asked waits for it, so the pump is still the only
// reader or writer and everything stays in order. A goroutine's stack never shrinks below what
// its deepest call needed until the GC finds it three-quarters unused, so a pump that ran a
// command itself kept 8–16 KiB of stack for the rest of an idle socket's life; the pumps now stay
// at the few KiB their idle wait needs. The work runs on a few pooled goroutines whose stacks
// stay grown (a fresh goroutine would grow its stack from 2 KiB by copying on every command);
// when none is free a new one is started. A panic in the work is raised again in the pump, as if
// the work had run there. Sockets owns the pool and stops it at Shutdown.
type deepPool struct {
	work   chan func() // unbuffered: a send succeeds only when a worker waits
	quit   chan struct{}
	idle   atomic.Int32
	mu     sync.Mutex // guards closed and the Add side of wg
	closed bool
	wg     sync.WaitGroup
}

// maxIdleDeep bounds the pool's idle workers (each keeps a grown stack of some 16–32 KiB).
const maxIdleDeep = 8

func newDeepPool() *deepPool {
	return &deepPool{work: make(chan func()), quit: make(chan struct{})}
}

// run runs f on a pooled goroutine and waits for it. A nil pool starts a goroutine for f.
func (p *deepPool) run(f func()) {
	if p == nil {
		deep(f)
		return
	}
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		f()
	}
	select {
	case p.work <- job:
	default:
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			go job()
		} else {
			p.wg.Add(1)
			p.mu.Unlock()
			go p.worker(job)
		}
	}
	if r := <-done; r != nil {
		panic(r)
	}
}

func (p *deepPool) worker(job func()) {
	defer p.wg.Done()
	for {
		job()
		if p.idle.Add(1) > maxIdleDeep {
			p.idle.Add(-1)
			return
		}
		select {
		case job = <-p.work:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

// stop ends the idle workers and waits for the busy ones (Sockets.Shutdown, after the pumps).
func (p *deepPool) stop() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// deep runs f on a goroutine of its own and waits for it (deepPool without the pool).
func deep(f func()) {
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	if p := <-done; p != nil {
		panic(p)
	}
}

// MarshalFrame encodes a websocket frame. HTML characters are left as they are: a frame is never
// embedded in a page, and a console fragment full of markup would grow by a fifth as \u003c.
func MarshalFrame(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
