package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentd/agent"
)

// BenchmarkConsoleFanout measures the agent console under many agents: every agent is signed in
// through the real login form, has a console socket open (cookie, same-origin, CSRF hello) and
// works one active chat. One op is one burst: every customer sends one message over the customer
// websocket at (nearly) the same moment, and the op ends when each message has reached its
// agent's console as an ops frame. Per message it records the time from just before the
// customer's send_message frame is written until the agent's console socket has read the frame
// that contains the text; p50/p99 are over all messages. msgs/s is messages over timed time,
// console-B/msg the console bytes read per message (every frame, not only the message's);
// db-acquires/msg and pool-wait-µs/msg come from the node's pgxpool statistics.
//
// Every agent and every customer connects from its own loopback address (127.x.y.z), as they
// would from their own machines: the sign-in limit (5 per address, not configurable) and the
// start and connect limits are per address. Setting up 200 agents takes tens of seconds (two
// bcrypt hashes each), so the benchmark uses b.Loop, which runs the setup once per -count.
// Each round adds a message to every transcript, so longer runs (-benchtime) work on longer
// chats; compare results at the same -benchtime. Run with
//
//	go test ./cmd/agentd -run '^$' -bench ConsoleFanout -benchtime 200x
func BenchmarkConsoleFanout(b *testing.B) {
	for _, agents := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			benchConsoleFanout(b, agents)
		})
	}
}

func benchConsoleFanout(b *testing.B, agents int) {
	ctx := context.Background()
	m := startNode(b, newDB(b), func(c *Config) {
		c.Customer.CommandsPerSecond, c.Customer.CommandBurst = 1e6, 1e6
		c.Router.RouteInterval = 50 * time.Millisecond
	})
	base := m.URL()

	// Agents: sign in over HTTP, open the console socket, say hello, go Ready.
	users := make([]agent.User, agents)
	byID := map[int64]int{}
	consoles := make([]*benchConsole, agents)
	for i := range agents {
		users[i] = newAgent(b, m, fmt.Sprintf("fan%03d", i), 1)
		byID[users[i].ID] = i
		consoles[i] = openConsole(b, base, users[i].Username, benchIP(1, i))
	}
	for _, u := range users {
		ready(b, m, u)
	}

	// Customers: one session each; each chat is offered to one agent (capacity 1) and accepted.
	custOf := map[string]*client{} // interaction id → its customer
	for i := range agents {
		c := dialFrom(b, m, benchIP(2, i))
		d := mustOK(b, c.do("start", map[string]any{"username": fmt.Sprintf("Customer %d", i)}))
		custOf[d.str("session_id")] = c
	}
	deadline := time.Now().Add(time.Minute)
	for countWhere(b, m, `SELECT count(*) FROM assignments WHERE state = 'offered'`) < agents {
		if time.Now().After(deadline) {
			b.Fatal("chats not all offered in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, err := m.DB.Pool.Query(ctx, `SELECT user_id, interaction_id::text FROM assignments WHERE state = 'offered'`)
	if err != nil {
		b.Fatal(err)
	}
	pairs := make([]fanoutPair, agents) // by agent index
	for rows.Next() {
		var uid int64
		var iid string
		if err := rows.Scan(&uid, &iid); err != nil {
			b.Fatal(err)
		}
		i, ok := byID[uid]
		if !ok || custOf[iid] == nil || pairs[i].iid != "" {
			b.Fatalf("unexpected offer of %s to user %d", iid, uid)
		}
		pairs[i] = fanoutPair{console: consoles[i], customer: custOf[iid], iid: iid}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	panels := make([]chan time.Time, agents)
	for i, p := range pairs {
		if p.iid == "" {
			b.Fatalf("agent %s got no offer", users[i].Username)
		}
		// Once the console shows the chat's transcript it is subscribed to the chat.
		panels[i] = p.console.watch("transcript-" + p.iid)
		if _, err := m.Agents.Accept(ctx, users[i], p.iid); err != nil {
			b.Fatal(err)
		}
	}
	for i, p := range pairs {
		p.console.wait(b, panels[i], "chat panel of "+p.iid, time.Minute)
	}

	var lat []time.Duration
	frames := make([][]byte, agents)
	cmdIDs := make([]string, agents)
	watches := make([]chan time.Time, agents)
	sent := make([]time.Time, agents)
	var bytesBefore int64
	for _, c := range consoles {
		bytesBefore += c.bytes.Load()
	}
	pool := m.DB.Pool.Stat()
	round := 0
	for b.Loop() {
		round++
		for i, p := range pairs {
			text := fmt.Sprintf("fanout-a%03d-r%07d", i, round) // fixed width: no text is a prefix of another
			cmdIDs[i] = fmt.Sprintf("m-%d-%d", i, round)
			frames[i], _ = json.Marshal(map[string]any{"id": cmdIDs[i], "cmd": "send_message", "args": map[string]any{"text": text}})
			watches[i] = p.console.watch(text)
		}
		// All customers send at once (one write each, back to back); each clock starts at its write.
		for i, p := range pairs {
			sent[i] = time.Now()
			if err := p.customer.ws.WriteMessage(websocket.TextMessage, frames[i]); err != nil {
				b.Fatalf("customer %d: %v", i, err)
			}
		}
		timeout := time.After(30 * time.Second)
		for i, p := range pairs {
			select {
			case at := <-watches[i]:
				lat = append(lat, at.Sub(sent[i]))
			case <-p.console.done:
				b.Fatalf("round %d: console of agent %d closed (%v)", round, i, p.console.err)
			case <-timeout:
				arrived := i
				for _, w := range watches[i+1:] {
					arrived += len(w)
				}
				b.Fatalf("round %d: message of customer %d (chat %s) never reached its agent's console; %d of %d arrived this round",
					round, i, p.iid, arrived, agents)
			}
		}
		for i, p := range pairs {
			mustOK(b, p.customer.waitResult(cmdIDs[i]))
			p.customer.mu.Lock()
			p.customer.frames, p.customer.result = p.customer.frames[:0], map[string]frame{}
			p.customer.mu.Unlock()
		}
	}
	b.StopTimer()
	if want := round * agents; len(lat) != want {
		b.Fatalf("%d of %d messages reached the consoles", len(lat), want)
	}
	// And Postgres holds each message once: nothing lost, nothing stored twice.
	if n := countWhere(b, m, `SELECT count(*) FROM transcript_events WHERE kind = 'message'`); n != round*agents {
		b.Fatalf("%d messages stored, %d sent", n, round*agents)
	}
	var bytesAfter int64
	for _, c := range consoles {
		bytesAfter += c.bytes.Load()
	}
	poolAfter := m.DB.Pool.Stat()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(bytesAfter-bytesBefore)/float64(len(lat)), "console-B/msg")
	// The node's Postgres pool: connections taken per message (queries and transactions, all
	// callers) and the time spent waiting for a free one.
	b.ReportMetric(float64(poolAfter.AcquireCount()-pool.AcquireCount())/float64(len(lat)), "db-acquires/msg")
	b.ReportMetric(float64((poolAfter.AcquireDuration()-pool.AcquireDuration()).Microseconds())/float64(len(lat)), "pool-wait-µs/msg")
}

type fanoutPair struct {
	console  *benchConsole
	customer *client
	iid      string
}

// benchIP is a distinct loopback address per client: 127.group.hi.lo (lo never 0).
func benchIP(group, i int) net.IP {
	return net.IPv4(127, byte(group), byte(i/250), byte(i%250+1))
}

func dialerFrom(ip net.IP) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
}

// dialFrom opens a customer socket from the given local address.
func dialFrom(b *testing.B, m *Main, ip net.IP) *client {
	b.Helper()
	d := websocket.Dialer{Subprotocols: []string{"agentd-chat.v1"}, HandshakeTimeout: 5 * time.Second, NetDialContext: dialerFrom(ip).DialContext}
	ws, resp, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/chat", nil)
	if err != nil {
		b.Fatalf("dial customer from %s: %v (%v)", ip, err, resp)
	}
	return newClient(b, ws)
}

// benchConsole is a console socket as console.js uses it, read by one goroutine that stamps each
// frame on arrival and checks it against the texts being waited for.
type benchConsole struct {
	ws      *websocket.Conn
	done    chan struct{}
	bytes   atomic.Int64
	mu      sync.Mutex
	watches map[string]chan time.Time
	err     error
}

// openConsole signs in as a browser does (login form with its CSRF token, session cookie, the
// console page's CSRF token) and opens the console socket with the page's origin and the hello.
func openConsole(b *testing.B, base, username string, ip net.IP) *benchConsole {
	b.Helper()
	tr := &http.Transport{DialContext: dialerFrom(ip).DialContext}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := login(b, hc, base, username, "password-"+username)
	tr.CloseIdleConnections()

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: dialerFrom(ip).DialContext, Jar: jar}
	ws, resp, err := d.Dial(strings.Replace(base, "http://", "ws://", 1)+"/ws/console", http.Header{"Origin": {base}})
	if err != nil {
		b.Fatalf("console socket for %s: %v (%v)", username, err, resp)
	}
	if err := ws.WriteJSON(map[string]any{"id": "hello-1", "cmd": "hello", "args": map[string]string{"csrf": csrf}}); err != nil {
		b.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f frame
		if err := ws.ReadJSON(&f); err != nil {
			b.Fatalf("console hello for %s: %v", username, err)
		}
		if f["type"] == "result" {
			if f["ok"] != true {
				b.Fatalf("console hello for %s refused: %v", username, f)
			}
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	c := &benchConsole{ws: ws, done: make(chan struct{}), watches: map[string]chan time.Time{}}
	go c.read()
	b.Cleanup(func() { _ = ws.Close(); <-c.done })
	return c
}

func (c *benchConsole) read() {
	defer close(c.done)
	for {
		_, msg, err := c.ws.ReadMessage()
		at := time.Now()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		c.bytes.Add(int64(len(msg)))
		c.mu.Lock()
		for text, ch := range c.watches {
			if bytes.Contains(msg, []byte(text)) {
				ch <- at
				delete(c.watches, text)
			}
		}
		c.mu.Unlock()
	}
}

// watch returns a channel that gets the arrival time of the first frame containing text.
func (c *benchConsole) watch(text string) chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.watches[text] = ch
	c.mu.Unlock()
	return ch
}

func (c *benchConsole) wait(b *testing.B, ch chan time.Time, what string, d time.Duration) {
	b.Helper()
	select {
	case <-ch:
	case <-c.done:
		b.Fatalf("console closed (%v) while waiting for %s", c.err, what)
	case <-time.After(d):
		b.Fatalf("console never showed %s", what)
	}
}
