package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd/chat"
)

// Listener receives other nodes' notifications over a dedicated LISTEN connection and hands them
// to the local hub. When the connection is lost it reconnects with backoff and then calls Resync,
// because notifications sent while it was away are gone: Resync makes every local subscriber
// re-read from its last position, and Postgres, not NOTIFY, is what guarantees nothing is lost.
type Listener struct {
	url       string
	nodeID    string
	bcast     chat.Broadcaster
	resync    func()
	logger    *slog.Logger
	connected atomic.Bool
}

// NewListener returns a Listener for databaseURL. resync is called after every (re)connection.
func NewListener(databaseURL, nodeID string, bcast chat.Broadcaster, resync func(), logger *slog.Logger) *Listener {
	return &Listener{url: databaseURL, nodeID: nodeID, bcast: bcast, resync: resync, logger: logger}
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
	if l.resync != nil {
		l.resync()
	}
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
			l.bcast.Broadcast(note)
		}
	}
}

func (w wireNote) notification() (chat.Notification, bool) {
	switch w.Kind {
	case "e":
		return chat.Notification{Kind: chat.NotifyEvents, InteractionID: w.Interaction, Index: int(w.N)}, true
	case "s":
		return chat.Notification{Kind: chat.NotifySide, InteractionID: w.Interaction, Seq: w.N}, true
	case "q":
		return chat.Notification{Kind: chat.NotifyQueue, ServiceID: w.Service}, true
	case "a":
		return chat.Notification{Kind: chat.NotifyAgent, UserID: w.User}, true
	case "t":
		if w.Typing == nil {
			return chat.Notification{}, false
		}
		t := w.Typing
		return chat.Notification{Kind: chat.NotifyTyping, InteractionID: w.Interaction, Typing: &chat.Typing{
			Party:    chat.Party{ID: t.PartyID, InteractionID: w.Interaction, Type: chat.PartyType(t.PartyType), Name: t.PartyName},
			IsTyping: t.IsTyping, Text: t.Text, At: time.UnixMilli(t.At),
		}}, true
	}
	return chat.Notification{}, false
}
