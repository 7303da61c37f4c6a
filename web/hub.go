package web

import (
	"sync"

	"agentd/chat"
)

// subscriber is a connection the hub delivers to: a customer socket or an agent console.
// notify and resync must not block.
type subscriber interface {
	notify(chat.Notification)
	resync()
	closeWith(code int, reason string)
}

type set map[subscriber]struct{}

// memberships records where a connection is subscribed, so unregistering it touches only those
// entries instead of scanning every room (a node restart disconnects everyone at once).
type memberships struct {
	rooms    map[string]struct{}
	services map[int64]struct{}
	agents   map[int64]struct{}
}

// Hub maps interactions, service queues and agents to this node's connections and fans
// notifications out to them. Broadcast never blocks on a socket: each connection only records
// what it has to catch up on and is woken; its own write pump does the reading and writing. That
// keeps a slow or dead browser from delaying anyone else, and it is why a plain RWMutex suffices
// here instead of a hub goroutine: nothing is held while doing I/O.
type Hub struct {
	mu       sync.RWMutex
	all      map[subscriber]*memberships
	rooms    map[string]set // interaction id → connections
	services map[int64]set  // service id → connections (queue positions, queue counts)
	agents   map[int64]set  // user id → that agent's consoles
	closed   bool
	observer func(chat.Notification) // sees every notification; must not block (set before use)
	queues   interface {
		changed(serviceID int64)
		changedAll()
	}
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		all:      make(map[subscriber]*memberships),
		rooms:    make(map[string]set),
		services: make(map[int64]set),
		agents:   make(map[int64]set),
	}
}

// register adds a new connection; it reports false when the hub is shutting down.
func (h *Hub) register(c subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.all[c] = &memberships{rooms: map[string]struct{}{}, services: map[int64]struct{}{}, agents: map[int64]struct{}{}}
	return true
}

func add[K comparable](m map[K]set, k K, c subscriber) {
	s := m[k]
	if s == nil {
		s = make(set)
		m[k] = s
	}
	s[c] = struct{}{}
}

func remove[K comparable](m map[K]set, k K, c subscriber) {
	if s := m[k]; s != nil {
		delete(s, c)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// attach subscribes c to an interaction and, when serviceID is not 0, to that service's queue.
func (h *Hub) attach(c subscriber, interactionID string, serviceID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	add(h.rooms, interactionID, c)
	m.rooms[interactionID] = struct{}{}
	if serviceID != 0 {
		add(h.services, serviceID, c)
		m.services[serviceID] = struct{}{}
	}
}

// detach undoes attach.
func (h *Hub) detach(c subscriber, interactionID string, serviceID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	remove(h.rooms, interactionID, c)
	delete(m.rooms, interactionID)
	if serviceID != 0 {
		remove(h.services, serviceID, c)
		delete(m.services, serviceID)
	}
}

// watch subscribes a console to its agent's notifications and its services' queues.
func (h *Hub) watch(c subscriber, userID int64, serviceIDs []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	add(h.agents, userID, c)
	m.agents[userID] = struct{}{}
	for _, id := range serviceIDs {
		add(h.services, id, c)
		m.services[id] = struct{}{}
	}
}

// unregister removes c from everything it was subscribed to.
func (h *Hub) unregister(c subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	delete(h.all, c)
	for k := range m.rooms {
		remove(h.rooms, k, c)
	}
	for k := range m.services {
		remove(h.services, k, c)
	}
	for k := range m.agents {
		remove(h.agents, k, c)
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
	if n.Kind == chat.NotifyQueue && h.queues != nil {
		h.queues.changed(n.ServiceID) // before the sockets are woken, so they see fresh positions
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	var targets set
	switch n.Kind {
	case chat.NotifyQueue:
		targets = h.services[n.ServiceID]
	case chat.NotifyAgent:
		targets = h.agents[n.UserID]
	default:
		targets = h.rooms[n.InteractionID]
	}
	for c := range targets {
		c.notify(n)
	}
}

// Resync makes every connection re-read what it may have missed. The LISTEN connection calls it
// after reconnecting, since notifications sent while it was down are lost.
func (h *Hub) Resync() {
	if h.queues != nil {
		h.queues.changedAll()
	}
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
	conns := make([]subscriber, 0, len(h.all))
	for c := range h.all {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeWith(code, reason)
	}
}
