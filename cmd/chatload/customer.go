package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// newID returns a command id as chat-service.js makes them: "c-" and 128 random bits in hex.
func newID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// text is a message body that carries its command id (so the other party, the checker and a
// console fragment can all tell which command it came from), padded to size bytes.
func text(id string, size int) string {
	if size <= len(id)+1 {
		return id
	}
	return id + " " + strings.Repeat("x", size-len(id)-1)
}

// wsURL turns a node's base URL into its socket URL.
func wsURL(base, path string) string {
	return strings.Replace(strings.Replace(base, "https://", "wss://", 1), "http://", "ws://", 1) + path
}

// frameIn is a frame from the server to a customer.
type frameIn struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
	Event *event `json:"event"`
}

type event struct {
	Index int    `json:"index"`
	Kind  string `json:"kind"`
	Party *struct {
		Type string `json:"type"`
	} `json:"party"`
	Content *struct {
		Text string `json:"text"`
	} `json:"content"`
}

// command is one command waiting for its answer, sent one at a time in issue order (as
// chat-service.js does: the next once the one before was answered).
type command struct {
	frame map[string]any
	id    string
	send  *Send // nil for commands that are not messages
	sent  bool
}

// customer is one browser tab running chat-service.js: it starts a session, sends messages with
// client command ids, and on every lost socket reconnects (to the next node when its node does
// not answer), restores from the last index it delivered and resends unanswered commands.
type customer struct {
	run    *Run
	n      int
	nodes  []string
	node   int
	dialer websocket.Dialer

	startID   string
	sessionID string
	secureKey string
	nextIndex int
	nextSeq   int
	buffered  map[int]event
	gapAsked  bool
	pending   []*command
	view      *View
	joined    chan struct{} // closed once an agent joined the chat
	joinOnce  sync.Once
	attached  atomic.Bool
	attaches  atomic.Int64 // successful start/restore
	shown     atomic.Int64 // events surfaced (nextIndex), for the drain

	in        chan connFrame
	ctl       chan func(*customer)
	gen       int
	ws        *websocket.Conn
	attachID  string
	early     []frameIn
	attempt   int
	loseAck   bool // fault: drop the socket right after the next message is written
	holdTill  time.Time
	reconnect *time.Timer
	startSend *Send // the start command, in the session-start storm
}

type connFrame struct {
	gen int
	f   *frameIn
	err error
}

func newCustomer(r *Run, n int, nodes []string, node int, ip net.IP) *customer {
	c := &customer{run: r, n: n, nodes: nodes, node: node % len(nodes), startID: newID("c-"), buffered: map[int]event{},
		joined: make(chan struct{}), in: make(chan connFrame, 256), ctl: make(chan func(*customer), 4)}
	c.dialer = websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 10 * time.Second}
	if ip != nil {
		c.dialer.NetDialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}).DialContext
	}
	return c
}

// loop is the customer's one goroutine: it owns every field above. Sends come from the clock
// (open loop): the next message is due at a fixed schedule whatever the acks do.
func (c *customer) loop(ctx context.Context) {
	c.connect(ctx)
	var next time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	c.reconnect = time.NewTimer(time.Hour)
	c.reconnect.Stop()
	reconnect := c.reconnect
	for {
		rate := c.run.customerRate()
		if rate > 0 && next.IsZero() {
			next = time.Now().Add(time.Duration(mrand.Float64() * float64(time.Second) / rate))
		}
		if !c.holdTill.IsZero() && !time.Now().Before(c.holdTill) {
			c.holdTill = time.Time{}
			c.pump()
		}
		if rate <= 0 {
			next = time.Time{}
			timer.Reset(100 * time.Millisecond)
		} else {
			timer.Reset(min(time.Until(next), 100*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			if c.ws != nil {
				_ = c.ws.Close()
			}
			return
		case f := <-c.in:
			if f.gen != c.gen {
				continue // a socket already given up on
			}
			if f.err != nil {
				c.run.log.errorf("customer socket " + closeCode(f.err))
				c.lost()
				continue
			}
			c.onFrame(f.f)
		case <-reconnect.C:
			c.connect(ctx)
		case fn := <-c.ctl:
			fn(c)
		case now := <-timer.C:
			if rate > 0 && !now.Before(next) {
				if c.sessionID != "" && c.run.sending.Load() {
					id := newID("c-")
					s := &Send{ID: id, From: "customer", Kind: "message", Session: c.sessionID, Text: text(id, c.run.cfg.Size), Sched: next, Index: -1}
					frame := map[string]any{"id": id, "cmd": "send_message", "args": map[string]any{"text": s.Text}}
					switch c.run.cfg.Scenario {
					case "typing": // the preview carries the id, so the console's typing line names it
						s.Kind, s.Text = "typing", ""
						frame = map[string]any{"id": id, "cmd": "typing", "args": map[string]any{"is_typing": true, "text": id}}
					case "userdata":
						s.Kind, s.Text = "userdata", ""
						frame = map[string]any{"id": id, "cmd": "update_userdata", "args": map[string]any{"user_data": map[string]any{"LoadValue": id}}}
					}
					c.run.log.add(s)
					c.pending = append(c.pending, &command{id: id, send: s, frame: frame})
					c.pump()
				}
				next = next.Add(time.Duration(float64(time.Second) / rate))
				if time.Since(next) > time.Second {
					next = time.Now() // the rate dropped: do not catch up on a schedule that no longer applies
				}
			}
		}
	}
}

func (c *customer) backoff() time.Duration {
	c.attempt++
	return backoff(c.run.cfg, c.attempt-1)
}

// connect opens a socket to the current node and sends start or restore. A node that does not
// answer the handshake is left for the next one in the list.
func (c *customer) connect(ctx context.Context) {
	c.gen++
	gen := c.gen
	ws, err := dialNode(ctx, c.run, &c.dialer, c.nodes, &c.node, "/ws/chat", "customer")
	if err != nil {
		c.lost()
		return
	}
	c.ws = ws
	go func() {
		for {
			var f frameIn
			_, msg, err := ws.ReadMessage()
			if err == nil {
				err = json.Unmarshal(msg, &f)
			}
			select {
			case c.in <- connFrame{gen: gen, f: &f, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	c.early = nil
	c.view.Conns = append(c.view.Conns, nil)
	var frame map[string]any
	if c.sessionID == "" {
		c.attachID = c.startID
		frame = map[string]any{"id": c.startID, "cmd": "start", "args": map[string]any{"service": c.run.cfg.Service, "username": fmt.Sprintf("Load %d", c.n)}}
	} else {
		c.attachID = newID("c-")
		frame = map[string]any{"id": c.attachID, "cmd": "restore", "args": map[string]any{
			"session_id": c.sessionID, "secure_key": c.secureKey, "from_index": c.nextIndex, "from_seq": c.nextSeq}}
	}
	if c.write(frame) && c.startSend != nil && c.sessionID == "" {
		now := time.Now()
		c.run.log.update(func() {
			if c.startSend.Attempts == 0 {
				c.startSend.Written = now
			}
			c.startSend.Attempts++
		})
	}
}

func (c *customer) write(frame map[string]any) bool {
	if c.ws == nil {
		return false
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteJSON(frame); err != nil {
		_ = c.ws.Close() // the read goroutine reports the close
		return false
	}
	return true
}

// closed forgets the socket: unanswered commands go again after the next attach, the buffered
// events come again from the restore.
func (c *customer) closed() {
	if c.ws != nil {
		_ = c.ws.Close()
	}
	c.ws = nil
	c.gen++
	c.attached.Store(false)
	c.attachID = ""
	c.buffered = map[int]event{}
	c.gapAsked = false
	for _, p := range c.pending {
		p.sent = false
	}
}

// lost closes the socket as a lost network would and reconnects after a backoff.
func (c *customer) lost() {
	c.closed()
	c.reconnect.Reset(c.backoff())
}

func (c *customer) onFrame(f *frameIn) {
	if c.attachID != "" {
		switch {
		case f.Type == "result" && f.ID == c.attachID:
			c.onAttach(f)
		case f.Type == "error":
			c.onError(f)
		default:
			c.early = append(c.early, *f)
		}
		return
	}
	c.dispatch(f)
}

func (c *customer) onAttach(f *frameIn) {
	c.attachID = ""
	if !f.OK {
		code := "?"
		if f.Error != nil {
			code = f.Error.Code
		}
		c.run.log.errorf("attach " + code)
		c.lost() // reconnect after a backoff
		return
	}
	var d struct {
		SessionID string `json:"session_id"`
		SecureKey string `json:"secure_key"`
	}
	_ = json.Unmarshal(f.Data, &d)
	if c.sessionID == "" {
		c.sessionID, c.secureKey = d.SessionID, d.SecureKey
		c.run.log.update(func() { c.view.Session = d.SessionID })
		if s := c.startSend; s != nil {
			now := time.Now()
			c.run.log.update(func() { s.Acked, s.Session, s.Index = now, d.SessionID, 0; s.AckCount++ })
		}
	}
	c.attempt = 0
	c.attached.Store(true)
	c.attaches.Add(1)
	early := c.early
	c.early = nil
	for i := range early {
		c.dispatch(&early[i])
	}
	c.pump()
}

func (c *customer) dispatch(f *frameIn) {
	switch f.Type {
	case "result":
		c.onResult(f)
	case "event":
		if f.Event != nil {
			conns := c.view.Conns
			conns[len(conns)-1] = append(conns[len(conns)-1], f.Event.Index)
			c.ingest(*f.Event)
		}
	case "notice", "userdata":
		var s struct {
			Seq int `json:"seq"`
		}
		_ = json.Unmarshal(mustJSON(f), &s)
	case "error":
		c.onError(f)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func (c *customer) onError(f *frameIn) {
	code := "?"
	if f.Error != nil {
		code = f.Error.Code
	}
	c.run.log.errorf("customer error frame " + code)
	if code == "rate_limited" {
		for _, p := range c.pending {
			p.sent = false
		}
		c.holdTill = time.Now().Add(time.Second + time.Duration(mrand.Float64()*float64(time.Second)))
	}
}

func (c *customer) onResult(f *frameIn) {
	if f.ID == "gap" {
		c.gapAsked = false
		var d struct {
			Events []event `json:"events"`
		}
		_ = json.Unmarshal(f.Data, &d)
		for _, ev := range d.Events {
			c.ingest(ev)
		}
		return
	}
	if len(c.pending) == 0 || c.pending[0].id != f.ID {
		return // an answer we stopped waiting for
	}
	p := c.pending[0]
	if !f.OK && f.Error != nil && f.Error.Code == "unavailable" {
		p.sent = false
		c.holdTill = time.Now().Add(250*time.Millisecond + time.Duration(mrand.Float64()*float64(250*time.Millisecond)))
		c.run.log.errorf("customer unavailable (retried)")
		return
	}
	c.pending = c.pending[1:]
	now := time.Now()
	if p.send != nil {
		var d struct {
			Index int `json:"index"`
		}
		_ = json.Unmarshal(f.Data, &d)
		c.run.log.update(func() {
			if f.OK {
				p.send.AckCount++
				if p.send.Acked.IsZero() {
					p.send.Acked, p.send.Index = now, d.Index
				}
			} else {
				p.send.Err = f.Error.Code
			}
		})
		if !f.OK {
			c.run.log.errorf("customer send " + f.Error.Code)
		}
	}
	c.pump()
}

// pump sends the first unanswered command unless it is on the wire already.
func (c *customer) pump() {
	if c.ws == nil || c.attachID != "" || !c.attached.Load() || len(c.pending) == 0 || time.Now().Before(c.holdTill) {
		return
	}
	p := c.pending[0]
	if p.sent {
		return
	}
	now := time.Now()
	if !c.write(p.frame) {
		return
	}
	p.sent = true
	if p.send != nil {
		c.run.log.update(func() {
			if p.send.Attempts == 0 {
				p.send.Written = now
			}
			p.send.Attempts++
		})
	}
	if c.loseAck && p.send != nil {
		// The fault "lost ack": the socket goes before the result can arrive; after the
		// reconnect the same id is sent again and must not be applied twice.
		c.loseAck = false
		c.run.log.mark(fmt.Sprintf("lost ack of %s (customer %d)", p.id, c.n))
		c.lost()
	}
}

// ingest delivers events in index order, once each, as chat-service.js does: older ones are
// ignored, later ones wait for the gap to be filled with get_transcript.
func (c *customer) ingest(ev event) {
	if ev.Index < c.nextIndex {
		return
	}
	if ev.Index > c.nextIndex {
		c.buffered[ev.Index] = ev
		if !c.gapAsked && c.ws != nil {
			c.gapAsked = true
			first := ev.Index
			for i := range c.buffered {
				first = min(first, i)
			}
			c.write(map[string]any{"id": "gap", "cmd": "get_transcript", "args": map[string]any{"from_index": c.nextIndex, "limit": min(1000, first-c.nextIndex)}})
		}
		return
	}
	c.deliver(ev)
	for {
		b, ok := c.buffered[c.nextIndex]
		if !ok {
			break
		}
		delete(c.buffered, c.nextIndex)
		c.deliver(b)
	}
}

func (c *customer) deliver(ev event) {
	now := time.Now()
	c.nextIndex = ev.Index + 1
	c.shown.Store(int64(c.nextIndex))
	t := ""
	if ev.Content != nil {
		t = ev.Content.Text
	}
	c.view.Shown = append(c.view.Shown, Surfaced{Index: ev.Index, Kind: ev.Kind, Text: t, At: now})
	if ev.Kind == "party_joined" && ev.Party != nil && ev.Party.Type == "agent" {
		c.joinOnce.Do(func() { close(c.joined) })
	}
	if ev.Kind == "message" && ev.Party != nil && ev.Party.Type != "client" {
		if s := c.run.log.get(commandIDOf(t)); s != nil {
			c.run.log.update(func() {
				if s.Delivered.IsZero() {
					s.Delivered = now
				}
			})
		}
	}
}

// commandIDOf returns the command id a message text starts with.
func commandIDOf(t string) string {
	id, _, _ := strings.Cut(t, " ")
	return id
}
