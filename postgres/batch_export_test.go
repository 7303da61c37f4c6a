package postgres

import (
	"context"

	"agentd/chat"
)

// BatchState reports c's queued commands and whether a batch is being written, over its lanes.
func BatchState(c *Committer) (pending int, running bool) {
	for _, l := range c.batch.lanes {
		l.mu.Lock()
		pending, running = pending+len(l.pending), running || l.running
		l.mu.Unlock()
	}
	return pending, running
}

// DecodePayload decodes a NOTIFY payload as a listener does.
func DecodePayload(payload string) ([]chat.Notification, error) {
	ws, err := decodePayload(payload)
	var out []chat.Notification
	for _, w := range ws {
		if n, ok := w.notification(); ok {
			out = append(out, n)
		}
	}
	return out, err
}

// WirePayloads packs the NOTIFY forms of notes as a commit does, under limit bytes each.
func WirePayloads(notes []chat.Notification, node string, limit int) ([]string, error) {
	tx := &Tx{nodeID: node}
	for _, n := range notes {
		if err := tx.Notify(context.Background(), n); err != nil {
			return nil, err
		}
	}
	return wirePayloads(tx.wire, limit), nil
}
