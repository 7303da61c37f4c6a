package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitLimit bounds every wait of a Client.
const waitLimit = 10 * time.Second

// Frame is a decoded server frame.
type Frame map[string]any

// Str returns the value at path as a string ("" when missing), e.g. f.Str("event", "kind").
func (f Frame) Str(path ...string) string {
	var v any = map[string]any(f)
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Client is the test's end of a websocket. It reads only when asked, so a test can stop reading
// as a slow client does, and it leaves no goroutine behind.
type Client struct {
	t  testing.TB
	ws *websocket.Conn
}

// Dial opens a websocket to url, with a small receive buffer (socketBuffer), and closes it at
// cleanup.
func Dial(t testing.TB, url string, subprotocols ...string) *Client {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols:     subprotocols,
		HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(socketBuffer)
			}
			return c, err
		},
	}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &Client{t: t, ws: ws}
}

// Send writes v as a JSON text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(waitLimit))
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// WaitFor reads frames until one matches and returns it; the socket ending first, or no match
// within 10 s, fails the test.
func (c *Client) WaitFor(what string, match func(Frame) bool) Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Fatalf("server sent a frame that is not JSON: %q", b)
		}
		if match(f) {
			return f
		}
	}
}

// Closed reads until the socket ends and returns the close frame the server sent, nil when the
// stream ended without one. A socket still open after 10 s fails the test.
func (c *Client) Closed() *websocket.CloseError {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			c.t.Fatal("the socket is still open")
		}
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok && ce.Code != websocket.CloseAbnormalClosure {
			return ce
		}
		return nil
	}
}
