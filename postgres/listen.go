package postgres

import (
	"context"
	"encoding/json"
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
	connected atomic.Bool
}

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
}

// NewListener returns a Listener.
func NewListener(d ListenerDeps) *Listener {
	return &Listener{url: d.DatabaseURL, nodeID: d.NodeID, local: d.Local, logger: d.Logger}
}

// Connected reports whether the LISTEN connection is up (for /readyz).
func (l *Listener) Connected() bool { return l.connected.Load() }

// Run listens until ctx is done.
func (l *Listener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		l.logger.Warn("listen connection lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *Listener) listen(ctx context.Context) error {
	cfg, err := connConfig(l.url)
	if err != nil {
		return err
	}
	// Named so operators (and tests) can find the LISTEN backend in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = "agentd-listen:" + l.nodeID
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	l.connected.Store(true)
	l.local.Resync()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var w wireNote
		if err := json.Unmarshal([]byte(n.Payload), &w); err != nil {
			l.logger.Warn("ignoring malformed notification", "err", err)
			continue
		}
		if w.Node == l.nodeID {
			continue // already delivered locally when it committed
		}
		if note, ok := w.notification(); ok {
			l.local.Broadcast(note)
		}
	}
}
