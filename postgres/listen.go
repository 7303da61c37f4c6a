package postgres

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listener receives other nodes' notifications over a dedicated LISTEN connection and hands them
// to the node's fan-out. When the connection is lost it reconnects with backoff and then calls
// Resync, because notifications sent while it was away are gone: Resync makes every local
// subscriber re-read from its last position, and Postgres, not NOTIFY, is what guarantees nothing
// is lost.
type Listener struct {
	url       string
	nodeID    string
	local     Resyncer
	logger    *slog.Logger
	healthy   time.Duration
	connected atomic.Bool
}

// The LISTEN connection's reconnect backoff: it doubles from listenBackoffMin up to
// listenBackoffMax while reconnecting fails or the connection keeps dropping, and starts again
// from listenBackoffMin once a connection stayed up for the healthy period. Without that reset a
// node that lost its connection now and then, hours apart, waited the full 5 s every time, and
// other nodes' events reached its sockets 5 s late.
const (
	listenBackoffMin     = 100 * time.Millisecond
	listenBackoffMax     = 5 * time.Second
	defaultListenHealthy = 10 * time.Second
)

// Resyncer is the node's fan-out as the Listener sees it: it gets the other nodes'
// notifications, and Resync after every (re)connection.
type Resyncer interface {
	Broadcaster
	Resync()
}

// ListenerDeps is what a Listener is built from.
type ListenerDeps struct {
	DatabaseURL string
	NodeID      string // NOTIFYs this node sent itself are skipped: they were delivered at commit
	Local       Resyncer
	Logger      *slog.Logger
	// HealthyAfter is how long a connection must stay up for the backoff to start over (10 s when
	// 0).
	HealthyAfter time.Duration
}

// NewListener returns a Listener.
func NewListener(d ListenerDeps) *Listener {
	if d.HealthyAfter <= 0 {
		d.HealthyAfter = defaultListenHealthy
	}
	return &Listener{url: d.DatabaseURL, nodeID: d.NodeID, local: d.Local, logger: d.Logger, healthy: d.HealthyAfter}
}

// Connected reports whether the LISTEN connection is up (for /readyz).
func (l *Listener) Connected() bool { return l.connected.Load() }

// Run listens until ctx is done.
func (l *Listener) Run(ctx context.Context) {
	backoff := listenBackoffMin
	for ctx.Err() == nil {
		up, err := l.listen(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if !up.IsZero() && time.Since(up) >= l.healthy {
			backoff = listenBackoffMin
		}
		l.logger.Warn("listen connection lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenBackoffMax)
	}
}

// listen connects, listens and hands on notifications until the connection fails; it returns
// when the connection was up (zero when it never was) and why it ended.
func (l *Listener) listen(ctx context.Context) (up time.Time, err error) {
	cfg, err := connConfig(l.url)
	if err != nil {
		return up, err
	}
	// Named so operators (and tests) can find the LISTEN backend in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = "agentd-listen:" + l.nodeID
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return up, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return up, err
	}
	up = time.Now()
	l.connected.Store(true)
	l.local.Resync()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return up, err
		}
		ws, err := decodePayload(n.Payload)
		if err != nil {
			l.logger.Warn("ignoring malformed notification", "err", err)
			continue
		}
		for _, w := range ws {
			if w.Node == l.nodeID {
				continue // already delivered locally when it committed
			}
			if note, ok := w.notification(); ok {
				l.local.Broadcast(note)
			}
		}
	}
}
