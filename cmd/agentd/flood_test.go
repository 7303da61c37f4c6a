package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// Security probe, issue 7, finding 3: garbage frames (not JSON, binary, unknown commands,
// oversized) were each answered and counted against no limit. One socket got 100,000 answers a
// second, and four of them took another customer's ack p99 from 4 ms to 500 ms. Every frame now
// counts against the connection's limit before it is decoded; past it frames are dropped
// unanswered, and a connection that keeps exceeding is closed with 1008 rate_limited.

// garbage is what the flooders send, one kind per socket. oversized is the customer surface's:
// above its frame limit (AGENTD_MAX_FRAME_BYTES, 64 KiB), below the 1 MiB that closes with 1009.
func garbage(oversized int) []floodKind {
	return []floodKind{
		{"not JSON", websocket.TextMessage, []byte("{{{ not json")},
		{"binary", websocket.BinaryMessage, []byte{0xde, 0xad, 0xbe, 0xef}},
		{"unknown command", websocket.TextMessage, []byte(`{"id":"flood-1","cmd":"no_such_command","args":{}}`)},
		{"oversized", websocket.TextMessage, make([]byte, oversized)},
	}
}

type floodKind struct {
	name string
	typ  int
	data []byte
}

// floodFor has one attacker send kind as fast as it can, on a socket from open, for d: whenever
// its socket is closed it opens another. It returns how many sockets it flooded, or what was
// wrong: every socket must end within a few seconds with 1008 rate_limited, after few replies.
func floodFor(d time.Duration, kind floodKind, open func() (*websocket.Conn, error)) (rounds int, err error) {
	until := time.Now().Add(d)
	for time.Now().Before(until) {
		ws, err := open()
		if err != nil {
			return rounds, err
		}
		start := time.Now()
		replies, ce, err := floodOnce(ws, kind)
		_ = ws.Close()
		// What the limit lets through while the flood lasts: the burst, 20 frames a second (the
		// handler takes its time over what it reads), a notice and the console's first render.
		allowed := 45 + int(20*time.Since(start).Seconds())
		switch {
		case ce == nil:
			return rounds, fmt.Errorf("%s: the flooding socket ended with %v, want 1008 rate_limited", kind.name, err)
		case ce.Code != websocket.ClosePolicyViolation || ce.Text != "rate_limited":
			return rounds, fmt.Errorf("%s: the flooding socket was closed with %d %q, want 1008 rate_limited", kind.name, ce.Code, ce.Text)
		case replies > allowed:
			return rounds, fmt.Errorf("%s: %d replies to a flood of %v, want %d at most", kind.name, replies, time.Since(start), allowed)
		}
		rounds++
	}
	return rounds, nil
}

// floodOnce sends kind on ws until the socket fails, and returns what came back and how it ended.
func floodOnce(ws *websocket.Conn, kind floodKind) (replies int, ce *websocket.CloseError, err error) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ws.WriteMessage(kind.typ, kind.data) == nil {
		}
	})
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			ce, _ = errors.AsType[*websocket.CloseError](err)
			if ce == nil {
				_ = ws.Close() // stops the writer
			}
			return replies, ce, err
		}
		replies++
	}
}

// flood runs one attacker per kind of garbage for d, in parallel, and fails the test unless
// every socket they opened was closed for its flood.
func flood(t *testing.T, d time.Duration, kinds []floodKind, open func() (*websocket.Conn, error)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(kinds))
	rounds := make([]int, len(kinds))
	for i, k := range kinds {
		wg.Go(func() { rounds[i], errs[i] = floodFor(d, k, open) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if rounds[i] == 0 {
			t.Fatalf("%s: no flood was closed", kinds[i].name)
		}
	}
	t.Logf("sockets flooded and closed, per kind: %v", rounds)
}

// bystander keeps a customer's session busy with commands at a pace within its limit, and
// records how long each took to be answered.
type bystander struct {
	c     *client
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	worst time.Duration
	n     int
	fail  frame
}

func startBystander(t *testing.T, m *Main) *bystander {
	c, _ := startSession(t, m, map[string]any{"username": "Bea"})
	b := &bystander{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			case <-time.After(60 * time.Millisecond): // 16 a second, below the limit of 20
			}
			id := newID()
			msg, _ := json.Marshal(map[string]any{"id": id, "cmd": "send_message", "args": map[string]any{"text": "still here"}})
			if i%2 == 1 {
				msg, _ = json.Marshal(map[string]any{"id": id, "cmd": "get_userdata", "args": map[string]any{"key": "K"}})
			}
			start := time.Now()
			if c.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
			var res frame
			for res == nil && time.Since(start) < 5*time.Second {
				c.mu.Lock()
				res = c.result[id]
				c.mu.Unlock()
				if res == nil {
					select {
					case <-c.notify:
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			b.mu.Lock()
			b.n++
			if took := time.Since(start); took > b.worst {
				b.worst = took
			}
			if b.fail == nil && (res == nil || res["ok"] != true) {
				b.fail = res
				if res == nil {
					b.fail = frame{"timeout": "no answer within 5 s"}
				}
			}
			b.mu.Unlock()
		}
	}()
	return b
}

// check stops the bystander and wants every one of its commands answered, successfully, within a
// second.
func (b *bystander) check(t *testing.T) {
	t.Helper()
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		t.Fatalf("the other customer's command failed during the flood: %v", b.fail)
	}
	if b.n < 5 {
		t.Fatalf("the other customer sent only %d commands", b.n)
	}
	if b.worst > time.Second {
		t.Fatalf("the other customer waited %v for an answer during the flood", b.worst)
	}
	t.Logf("the other customer's %d commands were answered within %v", b.n, b.worst)
}

// TestFloodedSocketsAreClosed: four attackers flood sockets with garbage for two seconds, each
// opening a new socket whenever its last one was closed. Every socket is closed with 1008
// rate_limited after at most the burst's replies, and another customer's commands are answered
// within a second throughout. Before, no flooding socket was ever closed, and each got an answer
// for every frame.
//
// It is not parallel: the attackers run in this process, as fast as they can, on the same two
// cores as the node, and the bystander's latency is measured. Parallel tests (browsers, private
// clusters) added to that pushed the bystander's worst answer from 0.3 s to 3 s; alone, the
// test shows what the node does, not what the machine has left.
func TestFloodedSocketsAreClosed(t *testing.T) {
	t.Run("Customer", func(t *testing.T) {
		m := startNode(t, newDB(t), func(c *Config) { c.Customer.ConnectsPerMinute, c.Customer.ConnectBurst = 1e6, 1e6 })
		b := startBystander(t, m)
		flood(t, 2*time.Second, garbage(100<<10), func() (*websocket.Conn, error) {
			ws, _, err := dialRaw(m, nil)
			return ws, err
		})
		b.check(t)
	})

	// Console sockets of a signed-in agent: frames above the console's 64 KiB read limit close
	// with 1009 at once, so its large garbage stays below. The agent's console opens again
	// afterwards.
	t.Run("Console", func(t *testing.T) {
		m := startNode(t, newDB(t))
		newAgent(t, m, "flo", 1)
		hc := httpClient(t)
		csrf := login(t, hc, m.URL(), "flo", "password-flo")
		b := startBystander(t, m)
		flood(t, 2*time.Second, garbage(60<<10), func() (*websocket.Conn, error) { return dialConsole(m, hc.Jar, csrf) })
		consoleSocket(t, m, "flo")
		b.check(t)
	})
}

// dialConsole opens a console socket with the cookies of a signed-in client and sends the hello;
// it does not wait for the first render.
func dialConsole(m *Main, jar http.CookieJar, csrf string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: jar}
	ws, _, err := d.Dial(strings.Replace(m.URL(), "http://", "ws://", 1)+"/ws/console", http.Header{"Origin": {m.URL()}})
	if err != nil {
		return nil, err
	}
	if err := ws.WriteJSON(map[string]any{"id": "hello-1", "cmd": "hello", "args": map[string]string{"csrf": csrf}}); err != nil {
		_ = ws.Close()
		return nil, err
	}
	return ws, nil
}

// TestBrowserSlowsDownAtTheFrameLimit: a page that sends 100 messages in a loop goes over its
// connection's frame limit (20 a second, bursts of 40). chat-service.js pauses when told
// rate_limited and sends the dropped command again, so every sendMessage succeeds, in order, on
// the same socket: the library is never closed as a flooder. Without the pause, the dropped
// commands were never answered and failed with timeout.
func TestBrowserSlowsDownAtTheFrameLimit(t *testing.T) {
	t.Parallel()
	const total = 100
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/chat": `
window.results = {};
window.closes = 0;
var Native = window.WebSocket;
window.WebSocket = function (url, protocol) {
	var ws = new Native(url, protocol);
	ws.addEventListener('close', function () { window.closes++; });
	return ws;
};
chat.startSession({serverUrl: AGENTD, username: 'Lola', commandTimeout: 20000}).done(function (session) {
	handleSession(session);
	for (var i = 0; i < ` + strconv.Itoa(total) + `; i++) {
		(function (i) {
			session.sendMessage('m' + i)
				.done(function () { window.results[i] = 'done'; })
				.fail(function (e) { window.results[i] = 'fail ' + e.error.code; });
		})(i);
	}
}).fail(function (e) { window.startError = e.error; });
`})
	m := startNode(t, newDB(t), func(c *Config) { c.Addr = addr; c.allowedOrigins = site.URL })
	tab := newTab(t, newBrowser(t))
	browse(t, tab, chromedp.Navigate(site.URL+"/chat"))
	poll(t, tab, "every sendMessage settled", `Object.keys(window.results).length === `+strconv.Itoa(total))
	if failed := eval[string](t, tab, `Object.keys(window.results).filter(i => window.results[i] !== 'done').map(i => 'm' + i + ': ' + window.results[i]).join(', ')`); failed != "" {
		t.Fatalf("sendMessage failed to the page: %s", failed)
	}
	if n := eval[int](t, tab, `window.closes`); n != 0 {
		t.Fatalf("the socket closed %d times: the library was taken for a flooder", n)
	}
	id := eval[string](t, tab, `window.session.sessionId`)
	evs, err := m.Chat.Transcript(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts, want []string
	for _, ev := range evs {
		if ev.Kind == "message" {
			texts = append(texts, ev.Text)
		}
	}
	for i := range total {
		want = append(want, "m"+strconv.Itoa(i))
	}
	if got := strings.Join(texts, " "); got != strings.Join(want, " ") {
		t.Fatalf("the transcript holds\n%s\nwant\n%s", got, strings.Join(want, " "))
	}
}
