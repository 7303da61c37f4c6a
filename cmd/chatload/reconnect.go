package main

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// backoff is the wait before reconnect attempt n (counting from 0), as chat-service.js waits:
// doubling from cfg.BackoffMin up to cfg.BackoffMax, with jitter over its upper half.
func backoff(cfg Config, n int) time.Duration {
	capMs := math.Min(float64(cfg.BackoffMax.Milliseconds()), float64(cfg.BackoffMin.Milliseconds())*math.Pow(2, float64(n)))
	return time.Duration((capMs/2 + mrand.Float64()*capMs/2) * float64(time.Millisecond))
}

// dialNode opens path on nodes[*node]; a node that does not answer the handshake is left for the
// next one in the list (*node moves on) and the error is logged as what ("customer", "agent")
// unless ctx ended.
func dialNode(ctx context.Context, r *Run, d *websocket.Dialer, nodes []string, node *int, path, what string) (*websocket.Conn, error) {
	base := nodes[*node]
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := d.DialContext(dctx, wsURL(base, path), http.Header{"Origin": {base}})
	if err != nil {
		if ctx.Err() == nil {
			r.log.errorf(what + " dial")
		}
		*node = (*node + 1) % len(nodes)
	}
	return ws, err
}
