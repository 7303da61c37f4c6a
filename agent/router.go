package agent

import (
	"context"
	"log/slog"
	"time"

	"agentd/chat"
)

// RouterStore is what the router needs from storage. Times are the router's clock: an offer's
// deadline is set and compared with the same clock.
type RouterStore interface {
	ExpireOffers(ctx context.Context, now time.Time) (int, error)
	Assign(ctx context.Context, now time.Time, max int) ([]Offer, error)
	SweepAbsent(ctx context.Context, now time.Time, grace time.Duration) ([]int64, error)
	User(ctx context.Context, id int64) (User, error)
}

// Acceptor accepts an offer on an agent's behalf (auto-answer).
type Acceptor interface {
	Accept(ctx context.Context, u User, interactionID string) (chat.Party, error)
}

// Wakeup tells the router to look at the queues now. It is the router's mailbox on the node's
// notification fan-out: a chat queued or an agent's presence changed anywhere wakes it at once,
// instead of at the next RouteInterval. It never blocks.
type Wakeup struct{ c chan struct{} }

// NewWakeup returns an empty mailbox.
func NewWakeup() *Wakeup { return &Wakeup{c: make(chan struct{}, 1)} }

// Wake asks for a routing pass.
func (w *Wakeup) Wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Broadcast wakes the router on queue and agent notifications.
func (w *Wakeup) Broadcast(n chat.Notification) {
	if n.Kind == chat.NotifyQueue || n.Kind == chat.NotifyAgent {
		w.Wake()
	}
}

// Resync wakes the router: while the LISTEN connection was away, anything may have changed.
func (w *Wakeup) Resync() { w.Wake() }

// RouterConfig configures the router (docs/configuration.md).
type RouterConfig struct {
	// RouteInterval is how often the router looks at the queues without being woken.
	RouteInterval time.Duration
	// AbsentGrace is how long an agent may have no console open before being set offline.
	AbsentGrace time.Duration
}

// Router offers queued chats to agents. Every node runs one; the row locks make concurrent
// routers safe.
type Router struct {
	store  RouterStore
	accept Acceptor
	wake   *Wakeup
	cfg    RouterConfig
	logger *slog.Logger
	now    func() time.Time
}

// RouterDeps is what a Router is built from.
type RouterDeps struct {
	Store  RouterStore
	Accept Acceptor // auto-answer accepts through it
	Wakeup *Wakeup
	Config RouterConfig
	Logger *slog.Logger
	Now    func() time.Time // time.Now when nil
}

// NewRouter returns a router.
func NewRouter(d RouterDeps) *Router {
	if d.Config.RouteInterval == 0 {
		d.Config.RouteInterval = time.Second
	}
	if d.Config.AbsentGrace == 0 {
		d.Config.AbsentGrace = 90 * time.Second
	}
	if d.Wakeup == nil {
		d.Wakeup = NewWakeup()
	}
	return &Router{store: d.Store, accept: d.Accept, wake: d.Wakeup, cfg: d.Config, logger: d.Logger, now: clockOr(d.Now)}
}

// Config returns the effective configuration.
func (r *Router) Config() RouterConfig { return r.cfg }

// Run routes until ctx is done: on every wake-up and every RouteInterval it expires overdue
// offers and assigns queued chats; now and then it sets absent agents offline.
func (r *Router) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.RouteInterval)
	defer tick.Stop()
	lastSweep := r.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.wake.c:
		}
		if now := r.now(); now.Sub(lastSweep) > r.cfg.AbsentGrace/3 {
			lastSweep = now
			if ids, err := r.store.SweepAbsent(ctx, now, r.cfg.AbsentGrace); err != nil {
				r.logIfLive(ctx, "sweep absent agents", err)
			} else if len(ids) > 0 {
				r.logger.Info("agents without a console set offline", "agent_ids", ids)
			}
		}
		r.RouteOnce(ctx)
	}
}

func (r *Router) logIfLive(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		r.logger.Error(what, "err", err)
	}
}

// RouteOnce expires overdue offers and assigns as many queued chats as it can.
func (r *Router) RouteOnce(ctx context.Context) {
	if _, err := r.store.ExpireOffers(ctx, r.now()); err != nil {
		r.logIfLive(ctx, "expire offers", err)
		return
	}
	for range 20 { // at most 200 offers, so one pass cannot starve the rest of the loop
		offers, err := r.store.Assign(ctx, r.now(), 10)
		if err != nil {
			r.logIfLive(ctx, "assign", err)
			return
		}
		if len(offers) == 0 {
			return
		}
		for _, offer := range offers {
			if !offer.AutoAnswered {
				continue
			}
			u, err := r.store.User(ctx, offer.UserID)
			if err == nil {
				_, err = r.accept.Accept(ctx, u, offer.InteractionID)
			}
			if err != nil {
				r.logIfLive(ctx, "auto-answer", err)
			}
		}
	}
}
