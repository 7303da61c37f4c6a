package web

import (
	"sync"

	"agentd/chat"
)

type set map[Subscriber]struct{}

// memberships records where a connection is subscribed, so unregistering it touches only those
// entries instead of scanning every room (a node restart disconnects everyone at once).
type memberships struct {
	rooms    map[string]struct{}
	services map[int64]struct{}
	agents   map[int64]struct{}
}

// Hub maps interactions, service queues and agents to this node's connections and fans
// notifications out to them. Broadcast never blocks: each connection only records what it has to
// catch up on and is woken; its own write pump does the reading and writing. That keeps a slow
// or dead browser from delaying anyone else, and it is why a plain RWMutex suffices here instead
// of a hub goroutine: nothing is held while doing I/O, and nothing here does I/O at all.
type Hub struct {
	mu       sync.RWMutex
	all      map[Subscriber]*memberships
	rooms    map[string]set // interaction id → connections
	services map[int64]set  // service id → consoles (queue counts)
	agents   map[int64]set  // user id → that agent's consoles
	everyone set            // connections that watch every notification but typing (WatchAll)
	closed   bool
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		all:      make(map[Subscriber]*memberships),
		rooms:    make(map[string]set),
		services: make(map[int64]set),
		agents:   make(map[int64]set),
		everyone: make(set),
	}
}

// Register adds a new connection; it reports false when the hub is shutting down.
func (h *Hub) Register(c Subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.all[c] = &memberships{rooms: map[string]struct{}{}, services: map[int64]struct{}{}, agents: map[int64]struct{}{}}
	return true
}

func add[K comparable](m map[K]set, k K, c Subscriber) {
	s := m[k]
	if s == nil {
		s = make(set)
		m[k] = s
	}
	s[c] = struct{}{}
}

func remove[K comparable](m map[K]set, k K, c Subscriber) {
	if s := m[k]; s != nil {
		delete(s, c)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// Attach subscribes c to an interaction's events, side channel and typing.
func (h *Hub) Attach(c Subscriber, interactionID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.all[c]; ok {
		add(h.rooms, interactionID, c)
		m.rooms[interactionID] = struct{}{}
	}
}

// Members returns how many of this node's connections follow an interaction.
func (h *Hub) Members(interactionID string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms[interactionID])
}

// Detach undoes Attach.
func (h *Hub) Detach(c Subscriber, interactionID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.all[c]; ok {
		remove(h.rooms, interactionID, c)
		delete(m.rooms, interactionID)
	}
}

// Watch subscribes a console to its agent's notifications and to the queues of serviceIDs,
// replacing the queues it watched before (the agent's services may have changed).
func (h *Hub) Watch(c Subscriber, userID int64, serviceIDs []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	add(h.agents, userID, c)
	m.agents[userID] = struct{}{}
	for id := range m.services {
		remove(h.services, id, c)
		delete(m.services, id)
	}
	for _, id := range serviceIDs {
		add(h.services, id, c)
		m.services[id] = struct{}{}
	}
}

// WatchAll subscribes c to every notification of every interaction, queue and agent except
// typing: the supervisors' dashboard, which shows them all.
func (h *Hub) WatchAll(c Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[c]; ok {
		h.everyone[c] = struct{}{}
	}
}

// Unregister removes c from everything it was subscribed to.
func (h *Hub) Unregister(c Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.all[c]
	if !ok {
		return
	}
	delete(h.all, c)
	delete(h.everyone, c)
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

// Broadcast delivers a notification to the connections it concerns. It never blocks.
func (h *Hub) Broadcast(n chat.Notification) {
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
		c.Notify(n)
	}
	if n.Kind == chat.NotifyTyping {
		return
	}
	for c := range h.everyone {
		if _, done := targets[c]; !done {
			c.Notify(n)
		}
	}
}

// Resync makes every connection re-read what it may have missed. The LISTEN connection calls it
// after reconnecting, since notifications sent while it was down are lost.
func (h *Hub) Resync() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.all {
		c.Resync()
	}
}

// Count returns the number of connections (for metrics and tests).
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// CloseAll closes every connection with reason and refuses new ones. Used at shutdown with 1001
// (going away) so clients reconnect, possibly to another node.
func (h *Hub) CloseAll(reason CloseReason) {
	h.mu.Lock()
	h.closed = true
	conns := make([]Subscriber, 0, len(h.all))
	for c := range h.all {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close(reason)
	}
}
