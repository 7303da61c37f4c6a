package customer

import (
	"sync"

	"agentd/chat"
	"agentd/web"
)

// session is what a connection is attached to after start or restore.
type session struct {
	interactionID string
	serviceID     int64
	party         chat.Party
}

// conn is one customer websocket on the web core's Conn: its read pump runs commands one at a
// time, in order (HandleFrame); its write pump catches the client up (Flush).
type conn struct {
	*web.Conn
	s      *Surface
	ip     string
	origin string
	used   bool // the session was used on this connection (read pump only)

	mu        sync.Mutex // guards everything below
	sess      *session
	nextIndex int   // next transcript index this client needs
	nextSeq   int64 // next side-channel seq this client needs
	queuePos  int   // latest position from QueuePositions; 0 when not waiting
	sentQueue int   // the position last sent
	// checkService is set when an agent left the chat: a transfer may have moved it to another
	// service, whose queue the connection then follows.
	checkService bool
}

func newConn(s *Surface, wc *web.Conn, ip, origin string) *conn {
	return &conn{Conn: wc, s: s, ip: ip, origin: origin}
}

// Notify turns a notification of the connection's interaction into marks; it never blocks (the
// hub calls it).
func (c *conn) Notify(n chat.Notification) {
	c.mu.Lock()
	s := c.sess
	if s == nil {
		c.mu.Unlock()
		return
	}
	nextIndex, nextSeq := c.nextIndex, c.nextSeq
	c.mu.Unlock()
	switch n.Kind {
	case chat.NotifyEvents:
		if n.Index < nextIndex {
			return // already sent
		}
		c.HandOver(s.interactionID, n.Events) // without events (another node's), a mark to read them
	case chat.NotifySide:
		if n.Seq >= nextSeq {
			c.Mark(web.Mark{Kind: chat.NotifySide, Key: s.interactionID})
		}
	case chat.NotifyTyping:
		if n.Typing != nil && n.Typing.Party.ID != s.party.ID {
			c.SetTyping(n.Typing.Party.ID, *n.Typing)
		}
	}
}

// setQueuePosition is QueuePositions telling the connection its position; it never blocks.
func (c *conn) setQueuePosition(pos int) {
	c.mu.Lock()
	changed := pos != c.queuePos
	c.queuePos = pos
	c.mu.Unlock()
	if changed {
		c.Mark(web.Mark{Kind: chat.NotifyQueue})
	}
}

// preattach subscribes the connection to the interaction a start is about to create, before it
// commits, so nothing committed to it after the start is missed: the hub's notifications are
// recorded from now on (the connection is held until the start's result is queued, so none is
// written before it).
func (c *conn) preattach(interactionID string) {
	c.Hold()
	c.mu.Lock()
	c.sess = &session{interactionID: interactionID}
	c.nextIndex, c.nextSeq = 0, 0
	c.mu.Unlock()
	c.s.hub.Attach(c, interactionID)
}

// unpreattach undoes preattach: the start failed or found an older session.
func (c *conn) unpreattach(interactionID string) {
	c.s.hub.Detach(c, interactionID)
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
	c.Release()
}

// started completes preattach with the committed start: its events are handed over in memory
// (the hub's copy of them, if it came, is skipped as already sent), and the side channel is
// followed from the interaction's next seq: what the start itself wrote there is the customer's
// own UserData, which a customer is never shown. Nothing is read back from Postgres.
func (c *conn) started(s session, in chat.Interaction, events []chat.Event) {
	c.mu.Lock()
	c.sess = &s
	c.nextSeq = max(c.nextSeq, in.NextSeq)
	c.mu.Unlock()
	c.s.positions.add(c, s.serviceID)
	c.HandOver(s.interactionID, events)
	c.Release()
}

// attach binds the connection to a session and schedules the catch-up from the given positions.
func (c *conn) attach(s session, fromIndex int, fromSeq int64) {
	c.mu.Lock()
	c.sess = &s
	c.nextIndex, c.nextSeq = fromIndex, fromSeq
	c.mu.Unlock()
	c.s.hub.Attach(c, s.interactionID)
	c.s.positions.add(c, s.serviceID)
	c.Mark(web.Mark{Kind: chat.NotifyEvents, Key: s.interactionID}, web.Mark{Kind: chat.NotifySide, Key: s.interactionID})
}

func (c *conn) session() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

var _ web.Handler = (*conn)(nil)
var _ web.Subscriber = (*conn)(nil)
