package customer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"agentd/chat"
)

// QueueChanges records which services' queues changed. It is the queue positions' mailbox on the
// node's notification fan-out, so it must never block: Broadcast and Resync only note the
// service under a short lock and wake the worker (QueuePositions.Run), which does the reading.
// No lock here is ever held across I/O.
type QueueChanges struct {
	mu    sync.Mutex
	dirty map[int64]bool
	all   bool
	wake  chan struct{}
}

// NewQueueChanges returns an empty mailbox.
func NewQueueChanges() *QueueChanges {
	return &QueueChanges{dirty: map[int64]bool{}, wake: make(chan struct{}, 1)}
}

// Broadcast notes queue notifications.
func (q *QueueChanges) Broadcast(n chat.Notification) {
	if n.Kind == chat.NotifyQueue {
		q.changed(n.ServiceID)
	}
}

// Resync notes that any queue may have moved (the LISTEN connection was away).
func (q *QueueChanges) Resync() {
	q.mu.Lock()
	q.all = true
	q.mu.Unlock()
	q.signal()
}

func (q *QueueChanges) changed(serviceID int64) {
	q.remark(serviceID)
	q.signal()
}

// remark marks a service again without waking the worker (after a failed read, which retries on
// its own timer instead of spinning).
func (q *QueueChanges) remark(serviceID int64) {
	q.mu.Lock()
	q.dirty[serviceID] = true
	q.mu.Unlock()
}

func (q *QueueChanges) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the services that changed since the last take, and whether all of them did.
func (q *QueueChanges) take() (map[int64]bool, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	d, all := q.dirty, q.all
	q.dirty, q.all = map[int64]bool{}, false
	return d, all
}

// PositionSource reads a service's queue: the 1-based position of every waiting chat.
type PositionSource interface {
	QueuePositions(ctx context.Context, serviceID int64) (map[string]int, error)
}

// queueWaiter is a connection that follows its chat's queue position.
type queueWaiter interface {
	setQueuePosition(pos int)
	session() *session
}

// QueuePositions pushes queue positions to this node's waiting customers. One worker reads a
// service's queue once per burst of changes for all of its waiting customers (one query, not one
// per socket: a change to a queue of N waiting customers would otherwise cost N queries, each
// counting the queue, exactly when the service is busiest), then tells each connection its
// position without blocking. Nothing on the broadcast path waits for it.
type QueuePositions struct {
	changes *QueueChanges
	source  PositionSource
	logger  *slog.Logger

	mu      sync.Mutex // guards waiting; never held across I/O
	waiting map[int64]map[queueWaiter]bool
}

// QueueDeps is what QueuePositions is built from.
type QueueDeps struct {
	Changes *QueueChanges
	Source  PositionSource
	Logger  *slog.Logger
}

// NewQueuePositions returns the worker; Run runs it.
func NewQueuePositions(d QueueDeps) *QueuePositions {
	return &QueuePositions{changes: d.Changes, source: d.Source, logger: d.Logger, waiting: map[int64]map[queueWaiter]bool{}}
}

// add makes c follow the queue of serviceID (its chat's service); its position is read soon.
func (p *QueuePositions) add(c queueWaiter, serviceID int64) {
	p.mu.Lock()
	for _, set := range p.waiting {
		delete(set, c)
	}
	set := p.waiting[serviceID]
	if set == nil {
		set = map[queueWaiter]bool{}
		p.waiting[serviceID] = set
	}
	set[c] = true
	p.mu.Unlock()
	p.changes.changed(serviceID)
}

// remove stops c following any queue.
func (p *QueuePositions) remove(c queueWaiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, set := range p.waiting {
		delete(set, c)
		if len(set) == 0 {
			delete(p.waiting, id)
		}
	}
}

// Run reads positions whenever queues changed, until ctx is done. A failed read is retried after
// a second: the services stay marked.
func (p *QueuePositions) Run(ctx context.Context) {
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.changes.wake:
		case <-retry:
			retry = nil
		}
		dirty, all := p.changes.take()
		p.mu.Lock()
		var services []int64
		for id := range p.waiting {
			if all || dirty[id] {
				services = append(services, id)
			}
		}
		p.mu.Unlock()
		for _, id := range services {
			if err := p.refresh(ctx, id); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.logger.Warn("queue positions", "service_id", id, "err", err)
				p.changes.remark(id)
				retry = time.After(time.Second)
			}
		}
	}
}

func (p *QueuePositions) refresh(ctx context.Context, serviceID int64) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	positions, err := p.source.QueuePositions(rctx, serviceID)
	if err != nil {
		return err
	}
	p.mu.Lock()
	waiters := make([]queueWaiter, 0, len(p.waiting[serviceID]))
	for c := range p.waiting[serviceID] {
		waiters = append(waiters, c)
	}
	p.mu.Unlock()
	for _, c := range waiters {
		if s := c.session(); s != nil {
			c.setQueuePosition(positions[s.interactionID])
		}
	}
	return nil
}
