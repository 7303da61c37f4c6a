package web

import "agentd/chat"

// Receiver is something on the node that reacts to notifications. It must not block: it is
// called right after a commit, and on the LISTEN loop. A receiver that also has Resync is told
// after the LISTEN connection came back, when the notifications sent meanwhile are lost.
type Receiver interface {
	Broadcast(chat.Notification)
}

// Fanout delivers every notification of a node, committed on it (after the commit) or by
// another node (through the LISTEN connection), to each of its receivers in order.
type Fanout struct{ receivers []Receiver }

// NewFanout returns the fan-out to receivers.
func NewFanout(receivers ...Receiver) Fanout { return Fanout{receivers: receivers} }

// Broadcast hands n to every receiver.
func (f Fanout) Broadcast(n chat.Notification) {
	for _, r := range f.receivers {
		r.Broadcast(n)
	}
}

// Resync tells every receiver that can re-read what it shows to do so.
func (f Fanout) Resync() {
	for _, r := range f.receivers {
		if rs, ok := r.(interface{ Resync() }); ok {
			rs.Resync()
		}
	}
}
