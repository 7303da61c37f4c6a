package web

import (
	"sync"

	"agentd/chat"
)

// Hub maps interactions (and service queues) to this node's customer connections and fans
// notifications out to them. Broadcast never blocks on a socket: each connection only records
// what it has to catch up on and is woken; its own write pump does the reading and writing. That
// keeps a slow or dead browser from delaying anyone else, and it is why a plain RWMutex suffices
// here instead of a hub goroutine: nothing is held while doing I/O.
type Hub struct {
	mu       sync.RWMutex
	all      map[*conn]struct{}
	rooms    map[string]map[*conn]struct{} // interaction id → connections
	services map[int64]map[*conn]struct{}  // service id → connections (for queue positions)
	closed   bool
	observer func(chat.Notification) // sees every notification; must not block (set before use)
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		all:      make(map[*conn]struct{}),
		rooms:    make(map[string]map[*conn]struct{}),
		services: make(map[int64]map[*conn]struct{}),
	}
}

// register adds a new connection; it reports false when the hub is shutting down.
func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.all[c] = struct{}{}
	return true
}

func (h *Hub) attach(c *conn, interactionID string, serviceID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[c]; !ok {
		return
	}
	add(h.rooms, interactionID, c)
	add(h.services, serviceID, c)
}

func add[K comparable](m map[K]map[*conn]struct{}, k K, c *conn) {
	set := m[k]
	if set == nil {
		set = make(map[*conn]struct{})
		m[k] = set
	}
	set[c] = struct{}{}
}

func remove[K comparable](m map[K]map[*conn]struct{}, k K, c *conn) {
	if set := m[k]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

func (h *Hub) unregister(c *conn, interactionID string, serviceID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.all, c)
	if interactionID != "" {
		remove(h.rooms, interactionID, c)
		remove(h.services, serviceID, c)
	}
}

// Observe registers a function that sees every notification, such as the router's wake-up on
// queue and agent changes. It must not block. Call it before the hub is used.
func (h *Hub) Observe(f func(chat.Notification)) { h.observer = f }

// Broadcast implements chat.Broadcaster.
func (h *Hub) Broadcast(n chat.Notification) {
	if h.observer != nil {
		h.observer(n)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	var targets map[*conn]struct{}
	if n.Kind == chat.NotifyQueue {
		targets = h.services[n.ServiceID]
	} else {
		targets = h.rooms[n.InteractionID]
	}
	for c := range targets {
		c.notify(n)
	}
}

// Resync makes every connection re-read what it may have missed. The LISTEN connection calls it
// after reconnecting, since notifications sent while it was down are lost.
func (h *Hub) Resync() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.all {
		c.resync()
	}
}

// Count returns the number of connections (for metrics and tests).
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// CloseAll closes every connection with the given close code and refuses new ones. Used at
// shutdown with 1001 (going away) so clients reconnect, possibly to another node.
func (h *Hub) CloseAll(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.all))
	for c := range h.all {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeWith(code, reason)
	}
}
