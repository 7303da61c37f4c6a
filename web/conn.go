package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"agentd/chat"
)

const (
	// writeWait bounds every write: a browser that cannot take a frame in this time is dropped.
	writeWait = 10 * time.Second
	// pongWait is how long a connection may stay silent (no frame, no pong) before it is closed.
	pongWait = 60 * time.Second
	// pingPeriod must be shorter than pongWait so a healthy client always answers in time.
	pingPeriod = 25 * time.Second
	// hardFrameLimit is where gorilla stops reading and closes with 1009. Frames between the
	// configured soft limit and this one are answered with frame_too_large and the socket lives.
	hardFrameLimit = 1 << 20
	// sendQueue bounds the frames (command results, errors) waiting for the write pump.
	sendQueue = 64
	// maxTypingBacklog is how many typing notifications a connection keeps while its writer is
	// busy; older ones are shed first, they are worthless once superseded.
	maxTypingBacklog = 4
	// maxPendingEvents bounds events handed over in memory; past it the connection just re-reads
	// from Postgres, so nothing is lost.
	maxPendingEvents = 256
	// dbTimeout bounds the catch-up reads a write pump makes.
	dbTimeout = 10 * time.Second
)

// session is what a connection is attached to after start or restore.
type session struct {
	interactionID string
	serviceID     int64
	party         chat.Party
}

// conn is one customer websocket. It has exactly one read pump (which also runs commands, one at
// a time, in order) and one write pump (which alone writes frames and catches up from Postgres).
type conn struct {
	id     string
	ws     *websocket.Conn
	srv    *Server
	logger *slog.Logger
	ip     string
	origin string

	send    chan []byte   // results and connection errors, written in order
	wake    chan struct{} // capacity 1: "there is something to catch up on"
	done    chan struct{}
	closing sync.Once
	limiter *rate.Limiter

	mu          sync.Mutex // guards everything below
	sess        *session
	nextIndex   int   // next transcript index this client needs
	nextSeq     int64 // next side-channel seq this client needs
	eventsDirty bool  // Postgres may have events from nextIndex we have not sent
	pending     []chat.Event
	sideDirty   bool
	queueDirty  bool
	typing      []chat.Typing
	lastQueue   int
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// notify records a notification; it never blocks (the hub calls it).
func (c *conn) notify(n chat.Notification) {
	c.mu.Lock()
	if c.sess == nil {
		c.mu.Unlock()
		return
	}
	switch n.Kind {
	case chat.NotifyEvents:
		if n.Index < c.nextIndex {
			c.mu.Unlock()
			return // already sent
		}
		if len(n.Events) > 0 && len(c.pending) < maxPendingEvents {
			c.pending = append(c.pending, n.Events...)
		} else {
			c.eventsDirty = true
		}
	case chat.NotifySide:
		if n.Seq < c.nextSeq {
			c.mu.Unlock()
			return
		}
		c.sideDirty = true
	case chat.NotifyQueue:
		c.queueDirty = true
	case chat.NotifyTyping:
		if n.Typing == nil || n.Typing.Party.ID == c.sess.party.ID {
			c.mu.Unlock()
			return
		}
		if len(c.typing) >= maxTypingBacklog {
			c.typing = c.typing[1:]
		}
		c.typing = append(c.typing, *n.Typing)
	}
	c.mu.Unlock()
	c.signal()
}

func (c *conn) resync() {
	c.mu.Lock()
	if c.sess != nil {
		c.eventsDirty, c.sideDirty, c.queueDirty = true, true, true
	}
	c.mu.Unlock()
	c.signal()
}

// attach binds the connection to a session and schedules the catch-up from the given positions.
func (c *conn) attach(s session, fromIndex int, fromSeq int64) {
	c.mu.Lock()
	c.sess = &s
	c.nextIndex, c.nextSeq = fromIndex, fromSeq
	c.eventsDirty, c.sideDirty, c.queueDirty = true, true, true
	c.mu.Unlock()
	c.srv.hub.attach(c, s.interactionID, s.serviceID)
	c.signal()
}

func (c *conn) session() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// enqueue queues a frame for the write pump. Only the read pump produces these frames (one per
// command), so when the queue is full the read pump waits: that is back-pressure on the very client
// that sends too fast. A client that does not drain its socket for writeWait is disconnected
// rather than waited for any longer.
func (c *conn) enqueue(v any) {
	b, err := marshalFrame(v)
	if err != nil {
		c.logger.Error("encode frame", "err", err)
		return
	}
	select {
	case c.send <- b:
		return
	case <-c.done:
		return
	default:
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case c.send <- b:
	case <-c.done:
	case <-t.C:
		c.logger.Warn("send queue full; dropping slow connection")
		c.srv.metrics.dropped()
		c.closeWith(websocket.CloseTryAgainLater, "too slow")
	}
}

func (c *conn) sendError(code, description string) {
	c.enqueue(errorFrame{Type: "error", Error: errorJSON{Code: code, Description: description}})
}

// closeWith sends a close frame (best effort) and closes the socket, once.
func (c *conn) closeWith(code int, reason string) {
	c.closing.Do(func() {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		close(c.done)
		_ = c.ws.Close()
	})
}

// readPump reads frames and runs commands until the socket fails.
func (c *conn) readPump(ctx context.Context) {
	defer c.closeWith(websocket.CloseNormalClosure, "")
	c.ws.SetReadLimit(hardFrameLimit)
	_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) &&
				!errors.Is(err, websocket.ErrReadLimit) {
				c.logger.Debug("read ended", "err", err)
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				c.closeWith(websocket.CloseMessageTooBig, "frame_too_large")
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(pongWait))
		if typ != websocket.TextMessage {
			c.sendError("bad_frame", "Frames must be JSON text frames.")
			continue
		}
		c.handleFrame(ctx, frame)
	}
}

// writePump writes queued frames, catches the client up from Postgres when woken, and pings.
func (c *conn) writePump(ctx context.Context) {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.closeWith(websocket.CloseNormalClosure, "")
	}()
	for {
		// Results go first: a command's answer must not wait behind a catch-up, and the result of
		// start/restore must reach the client before the events it announces.
		if !c.drainSend() {
			return
		}
		select {
		case <-c.done:
			return
		case b := <-c.send:
			if !c.write(b) {
				return
			}
		case <-c.wake:
			if !c.drainSend() || !c.flush(ctx) {
				return
			}
		case <-ticker.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

func (c *conn) drainSend() bool {
	for {
		select {
		case b := <-c.send:
			if !c.write(b) {
				return false
			}
		default:
			return true
		}
	}
}

func (c *conn) write(b []byte) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.logger.Debug("write failed", "err", err)
		return false
	}
	return true
}

func (c *conn) writeJSON(v any) bool {
	b, err := marshalFrame(v)
	if err != nil {
		c.logger.Error("encode frame", "err", err)
		return true
	}
	return c.write(b)
}

// marshalFrame encodes a websocket frame. HTML characters are left as they are: a frame is never
// embedded in a page, and a console fragment full of markup would grow by a fifth as \u003c.
func marshalFrame(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
