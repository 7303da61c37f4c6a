package web

import (
	"context"
	"sync"

	"agentd/chat"
)

// queuePositions computes a service's queue positions once per change for all of this node's
// waiting customers. Without it, every change to a queue of N waiting customers would cost N
// queries (one per socket), each counting the queue: quadratic work exactly when a service is
// busiest.
type queuePositions struct {
	chat *chat.Service

	mu       sync.Mutex
	services map[int64]*queueSnapshot
}

type queueSnapshot struct {
	mu        sync.Mutex // held while computing, so concurrent sockets wait for one query
	version   uint64     // bumped by every queue notification
	computed  uint64     // version the positions belong to
	positions map[string]int
}

func newQueuePositions(svc *chat.Service) *queuePositions {
	return &queuePositions{chat: svc, services: map[int64]*queueSnapshot{}}
}

func (q *queuePositions) snapshot(serviceID int64) *queueSnapshot {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.services[serviceID]
	if s == nil {
		s = &queueSnapshot{version: 1}
		q.services[serviceID] = s
	}
	return s
}

// changed marks a service's positions stale (called for every queue notification).
func (q *queuePositions) changed(serviceID int64) {
	s := q.snapshot(serviceID)
	s.mu.Lock()
	s.version++
	s.mu.Unlock()
}

// position returns the 1-based position of an interaction in its service's queue, 0 when it is
// not waiting.
func (q *queuePositions) position(ctx context.Context, serviceID int64, interactionID string) (int, error) {
	s := q.snapshot(serviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.computed != s.version {
		version := s.version
		positions, err := q.chat.QueuePositions(ctx, serviceID)
		if err != nil {
			return 0, err
		}
		s.positions, s.computed = positions, version
	}
	return s.positions[interactionID], nil
}

// changedAll marks every service stale: after a lost LISTEN connection, any queue may have moved.
func (q *queuePositions) changedAll() {
	q.mu.Lock()
	snaps := make([]*queueSnapshot, 0, len(q.services))
	for _, s := range q.services {
		snaps = append(snaps, s)
	}
	q.mu.Unlock()
	for _, s := range snaps {
		s.mu.Lock()
		s.version++
		s.mu.Unlock()
	}
}
