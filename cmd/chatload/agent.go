package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

var (
	loginCSRF   = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	consoleCSRF = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)
	acceptIID   = regexp.MustCompile(`data-cmd="accept" data-iid="([^"]+)"`)
	panelIID    = regexp.MustCompile(`<article class="chat-panel" id="chat-([^"]+)"`)
	itemIndex   = regexp.MustCompile(`data-index="(\d+)"`)
	commandRef  = regexp.MustCompile(`[ca]-[0-9a-f]{32}`)
)

// agent is one signed-in agent with the console open, as console.js drives it: it says hello
// with the page's CSRF token, goes Ready, accepts what it is offered (found by the Accept
// button's data attributes in the fragments), and answers in each of its chats at the set rate.
type agent struct {
	run      *Run
	name     string
	nodes    []string
	node     int
	hc       *http.Client
	jar      http.CookieJar
	netDial  func(ctx context.Context, network, addr string) (net.Conn, error)
	csrf     string
	chats    map[string]*agentChat
	order    []string // chat ids, for round-robin sends
	rr       int
	pending  map[string]*agentCmd
	asked    map[string]bool // accepts sent on this connection
	ws       *websocket.Conn
	gen      int
	in       chan connMsg
	ctl      chan func(*agent)
	ready    bool // hello answered on this connection
	attempt  int
	connects atomic.Int64
	active   atomic.Int64
	reconn   *time.Timer
	holdTill time.Time // after rate_limited: nothing is sent until then
	// narrow makes the next sockets' TCP window and segments tiny (a slow link), so that a
	// console that stops reading fills the server's socket buffers in seconds (SlowAgent).
	narrow atomic.Bool
	// stall, when set, stops the socket's reader before its next read until it is closed: the
	// TCP connection stays open and nothing is read (a frozen tab).
	stall atomic.Pointer[chan struct{}]
}

type agentChat struct {
	view  *View
	shown int // raw items on the current connection
	seen  atomic.Int64
}

type agentCmd struct {
	frame map[string]any
	send  *Send
	sched time.Time
}

type connMsg struct {
	gen int
	msg []byte
	err error
}

func newAgent(r *Run, name string, nodes []string, node int, ip net.IP) *agent {
	a := &agent{run: r, name: name, nodes: nodes, node: node % len(nodes), chats: map[string]*agentChat{},
		pending: map[string]*agentCmd{}, in: make(chan connMsg, 256), ctl: make(chan func(*agent), 4)}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		if !a.narrow.Load() {
			return nil
		}
		// Before connect, so the handshake announces them: a 4 KiB receive buffer (no
		// autotuning) and 536-byte segments, which keep the server's send buffer small too.
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	a.netDial = d.DialContext
	a.jar, _ = cookiejar.New(nil)
	a.hc = &http.Client{Jar: a.jar, Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return a
}

// login signs in through the /login form (its CSRF field, the session cookie) and reads the
// console page's CSRF token, which the socket's hello carries.
func (a *agent) login(ctx context.Context, password string) error {
	base := a.nodes[a.node]
	page, _, err := a.get(ctx, base+"/login")
	if err != nil {
		return err
	}
	m := loginCSRF.FindStringSubmatch(page)
	if m == nil {
		return errors.New("login form without a CSRF field")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login",
		strings.NewReader(url.Values{"_csrf": {m[1]}, "username": {a.name}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("login of %s: HTTP %d", a.name, resp.StatusCode)
	}
	page, _, err = a.get(ctx, base+"/console")
	if err != nil {
		return err
	}
	if m = consoleCSRF.FindStringSubmatch(page); m == nil {
		return fmt.Errorf("console page of %s has no CSRF token", a.name)
	}
	a.csrf = m[1]
	return nil
}

func (a *agent) get(ctx context.Context, u string) (string, int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := a.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

func (a *agent) loop(ctx context.Context) {
	a.reconn = time.NewTimer(time.Hour)
	a.reconn.Stop()
	a.connect(ctx)
	var next time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		rate := a.run.agentRate() * float64(len(a.order))
		if rate > 0 && next.IsZero() {
			next = time.Now().Add(time.Duration(mrand.Float64() * float64(time.Second) / rate))
		}
		if rate > 0 {
			timer.Reset(min(time.Until(next), 100*time.Millisecond))
		} else {
			next = time.Time{}
			timer.Reset(100 * time.Millisecond)
		}
		if !a.holdTill.IsZero() && !time.Now().Before(a.holdTill) {
			a.holdTill = time.Time{}
			a.resend()
		}
		select {
		case <-ctx.Done():
			if a.ws != nil {
				_ = a.ws.Close()
			}
			return
		case m := <-a.in:
			if m.gen != a.gen {
				continue
			}
			if m.err != nil {
				a.run.log.errorf("agent socket " + closeCode(m.err))
				a.lost()
				continue
			}
			a.onFrame(m.msg)
		case <-a.reconn.C:
			a.connect(ctx)
		case fn := <-a.ctl:
			fn(a)
		case now := <-timer.C:
			if rate > 0 && !now.Before(next) {
				if a.run.sending.Load() && len(a.order) > 0 {
					a.rr = (a.rr + 1) % len(a.order)
					iid := a.order[a.rr]
					id := newID("a-")
					s := &Send{ID: id, From: "agent", Kind: "message", Session: iid, Text: text(id, a.run.cfg.Size), Sched: next, Index: -1}
					a.run.log.add(s)
					cmd := &agentCmd{send: s, sched: next, frame: map[string]any{"id": id, "cmd": "send", "args": map[string]any{"iid": iid, "text": s.Text}}}
					a.pending[id] = cmd
					if a.ready && a.holdTill.IsZero() {
						a.write(cmd)
					}
				}
				next = next.Add(time.Duration(float64(time.Second) / rate))
				if time.Since(next) > time.Second {
					next = time.Now()
				}
			}
		}
	}
}

func (a *agent) write(c *agentCmd) {
	if a.ws == nil {
		return
	}
	now := time.Now()
	_ = a.ws.SetWriteDeadline(now.Add(10 * time.Second))
	if err := a.ws.WriteJSON(c.frame); err != nil {
		_ = a.ws.Close()
		return
	}
	if c.send != nil {
		a.run.log.update(func() {
			if c.send.Attempts == 0 {
				c.send.Written = now
			}
			c.send.Attempts++
		})
	}
}

func (a *agent) lost() {
	if a.ws != nil {
		_ = a.ws.Close()
	}
	a.ws, a.ready = nil, false
	a.gen++
	a.reconn.Reset(backoff(a.run.cfg, a.attempt))
	a.attempt++
}

func (a *agent) connect(ctx context.Context) {
	a.gen++
	gen := a.gen
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Jar: a.jar, NetDialContext: a.netDial}
	ws, err := dialNode(ctx, a.run, &d, a.nodes, &a.node, "/ws/console", "agent")
	if err != nil {
		a.lost()
		return
	}
	a.ws = ws
	a.asked = map[string]bool{}
	for _, ch := range a.chats {
		ch.shown = -1 // until the panel is rendered on this connection
	}
	go func() {
		for {
			if ch := a.stall.Load(); ch != nil {
				select {
				case <-*ch:
				case <-ctx.Done():
					return
				}
			}
			_, msg, err := ws.ReadMessage()
			select {
			case a.in <- connMsg{gen: gen, msg: msg, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	_ = ws.WriteJSON(map[string]any{"id": "hello-1", "cmd": "hello", "args": map[string]string{"csrf": a.csrf}})
}

type consoleFrame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
	Ops []struct {
		Op   string `json:"op"`
		ID   string `json:"id"`
		HTML string `json:"html"`
	} `json:"ops"`
}

func (a *agent) onFrame(msg []byte) {
	var f consoleFrame
	if err := json.Unmarshal(msg, &f); err != nil {
		a.run.log.errorf("agent bad frame")
		return
	}
	now := time.Now()
	switch f.Type {
	case "result":
		a.onResult(&f, now)
	case "ops":
		for _, op := range f.Ops {
			a.onOp(op.Op, op.ID, op.HTML, now)
		}
	case "error":
		code := "?"
		if f.Error != nil {
			code = f.Error.Code
		}
		a.run.log.errorf("agent error frame " + code)
		if code == "rate_limited" {
			// Over the console's frame limit: frames were dropped unanswered. Pause a little
			// over a second, then send every unanswered command again with its id.
			a.holdTill = time.Now().Add(time.Second + time.Duration(mrand.Float64()*float64(time.Second)))
		}
	}
}

func (a *agent) onResult(f *consoleFrame, now time.Time) {
	if f.ID == "hello-1" {
		if !f.OK {
			a.run.log.errorf("agent hello refused")
			return
		}
		a.ready, a.attempt = true, 0
		a.connects.Add(1)
		a.sendRaw(map[string]any{"id": newID("s-"), "cmd": "set_state", "args": map[string]any{"state": "ready"}})
		a.holdTill = time.Time{}
		a.resend()
		return
	}
	c, ok := a.pending[f.ID]
	if !ok {
		if !f.OK && f.Error != nil && f.Error.Code != "offer_gone" {
			a.run.log.errorf("agent command " + f.Error.Code)
		}
		return
	}
	if !f.OK && f.Error != nil && f.Error.Code == "unavailable" {
		// Nothing was applied, or the id applies once: send it again, after a pause (as
		// chat-service.js does), not at once, which while the database is down is a hot loop
		// into the console's frame limit.
		a.run.log.errorf("agent unavailable (retried)")
		if a.holdTill.IsZero() {
			a.holdTill = now.Add(250*time.Millisecond + time.Duration(mrand.Float64()*float64(250*time.Millisecond)))
		}
		return
	}
	delete(a.pending, f.ID)
	var d struct {
		Index int `json:"index"`
	}
	_ = json.Unmarshal(f.Data, &d)
	a.run.log.update(func() {
		if f.OK {
			c.send.AckCount++
			if c.send.Acked.IsZero() {
				c.send.Acked, c.send.Index = now, d.Index
			}
		} else if f.Error != nil {
			c.send.Err = f.Error.Code
		}
	})
	if !f.OK && f.Error != nil {
		a.run.log.errorf("agent send " + f.Error.Code)
	}
}

// resend writes every unanswered command again, oldest first, with its id: the console applies
// each id once.
func (a *agent) resend() {
	if !a.ready {
		return
	}
	cmds := make([]*agentCmd, 0, len(a.pending))
	for _, c := range a.pending {
		cmds = append(cmds, c)
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].sched.Before(cmds[j].sched) })
	for _, c := range cmds {
		a.write(c)
	}
}

// closeCode names why a socket's read ended, for the error counts.
func closeCode(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d", ce.Code)
	}
	return "closed (no close frame)"
}

func (a *agent) sendRaw(frame map[string]any) {
	if a.ws == nil {
		return
	}
	_ = a.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := a.ws.WriteJSON(frame); err != nil {
		_ = a.ws.Close()
	}
}

// onOp reads one fragment op the way the page would show it: offers by their Accept buttons,
// chat panels by their ids, transcript items by their data-index.
func (a *agent) onOp(kind, id, html string, now time.Time) {
	for _, m := range acceptIID.FindAllStringSubmatch(html, -1) {
		if iid := m[1]; !a.asked[iid] && a.chats[iid] == nil {
			a.asked[iid] = true
			a.sendRaw(map[string]any{"id": newID("s-"), "cmd": "accept", "args": map[string]any{"iid": iid}})
		}
	}
	switch {
	case kind == "append" && id == "chat-panels":
		for _, m := range panelIID.FindAllStringSubmatch(html, -1) {
			iid := m[1]
			ch := a.chats[iid]
			if ch == nil {
				ch = &agentChat{view: a.run.log.view("agent "+a.name, iid)}
				a.chats[iid] = ch
				a.order = append(a.order, iid)
				a.active.Add(1)
			}
			ch.view.Conns = append(ch.view.Conns, nil)
			ch.shown = 0
		}
	case kind == "append" && strings.HasPrefix(id, "transcript-"):
		iid := strings.TrimPrefix(id, "transcript-")
		ch := a.chats[iid]
		m := itemIndex.FindStringSubmatch(html)
		if ch == nil || m == nil || ch.shown < 0 {
			return
		}
		idx, _ := strconv.Atoi(m[1])
		conns := ch.view.Conns
		conns[len(conns)-1] = append(conns[len(conns)-1], idx)
		ch.shown++
		ch.seen.Store(int64(max(int(ch.seen.Load()), idx+1)))
		if ref := commandRef.FindString(html); strings.HasPrefix(ref, "c-") {
			if s := a.run.log.get(ref); s != nil {
				a.run.log.update(func() {
					if s.Delivered.IsZero() {
						s.Delivered = now
					}
				})
			}
		}
	case strings.HasPrefix(id, "typing-") || strings.HasPrefix(id, "ud-"):
		// The typing line and the UserData table name the customer command that changed them
		// (typing storm, UserData churn); coalesced changes show only the latest.
		if ref := commandRef.FindString(html); strings.HasPrefix(ref, "c-") {
			if s := a.run.log.get(ref); s != nil {
				a.run.log.update(func() {
					if s.Delivered.IsZero() {
						s.Delivered = now
					}
				})
			}
		}
	case kind == "remove" && strings.HasPrefix(id, "chat-"):
		a.run.log.errorf("agent chat removed")
	}
}

// SlowAgent is the slow-consumer fault: agent n moves to a narrow socket (tiny TCP window and
// segments), and once its console is back stops reading it, leaving the connection open, until
// dropped reports that the server disconnected it; then it reads again, finds the socket's end
// and reconnects, and its console catches up from the transcripts. It returns the agent.
func SlowAgent(ctx context.Context, r *Run, n int, dropped func(ctx context.Context) bool, bound time.Duration) (*agent, error) {
	a := r.agents[n%len(r.agents)]
	before := a.connects.Load()
	if err := a.do(ctx, func(a *agent) { a.narrow.Store(true); a.lost() }); err != nil {
		return a, err
	}
	if err := waitUntil(ctx, bound, func() bool { return a.connects.Load() > before }); err != nil {
		return a, fmt.Errorf("agent %s did not come back on a narrow socket: %w", a.name, err)
	}
	stall := make(chan struct{})
	a.stall.Store(&stall)
	r.log.mark("agent " + a.name + " stops reading")
	err := waitEvery(ctx, bound, 100*time.Millisecond, func() bool { return dropped(ctx) })
	a.narrow.Store(false)
	a.stall.Store(nil)
	close(stall)
	if err != nil {
		return a, fmt.Errorf("the server did not disconnect agent %s, which stopped reading: %w", a.name, err)
	}
	r.log.mark("agent " + a.name + " dropped as too slow, reads again")
	return a, nil
}

// do runs fn in the agent's loop and waits for it.
func (a *agent) do(ctx context.Context, fn func(*agent)) error {
	done := make(chan struct{})
	select {
	case a.ctl <- func(a *agent) { fn(a); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
