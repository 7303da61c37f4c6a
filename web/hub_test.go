package web

import (
	"testing"

	"agentd/chat"
)

type fakeSub struct{ got []chat.Notification }

func (f *fakeSub) Notify(n chat.Notification) { f.got = append(f.got, n) }
func (f *fakeSub) Resync()                    {}
func (f *fakeSub) Close(CloseReason)          {}

func TestHubRouting(t *testing.T) {
	h := NewHub()
	customer, console, other := &fakeSub{}, &fakeSub{}, &fakeSub{}
	for _, s := range []Subscriber{customer, console, other} {
		if !h.Register(s) {
			t.Fatal("register refused")
		}
	}
	h.Attach(customer, "chat-1")
	h.Attach(console, "chat-1")
	h.Watch(console, 42, []int64{7, 8})
	h.Attach(other, "chat-2")

	h.Broadcast(chat.Notification{Kind: chat.NotifyEvents, InteractionID: "chat-1"})
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 7})
	h.Broadcast(chat.Notification{Kind: chat.NotifyAgent, UserID: 42})
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 8})
	if len(customer.got) != 1 || len(console.got) != 4 || len(other.got) != 0 {
		t.Fatalf("deliveries: customer %d (want 1), console %d (want 4), other %d (want 0)", len(customer.got), len(console.got), len(other.got))
	}
	// Watch replaces the queues watched: the agent left service 8.
	h.Watch(console, 42, []int64{7})
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 8})
	if len(console.got) != 4 {
		t.Fatal("a queue no longer watched was delivered")
	}

	h.Detach(console, "chat-1")
	h.Unregister(customer)
	h.Broadcast(chat.Notification{Kind: chat.NotifyEvents, InteractionID: "chat-1"})
	if len(customer.got) != 1 || len(console.got) != 4 {
		t.Fatal("delivered after detach/unregister")
	}
	h.Unregister(console)
	h.Unregister(other)
	if h.Count() != 0 || len(h.rooms) != 0 || len(h.services) != 0 || len(h.agents) != 0 {
		t.Fatalf("hub not empty after everyone left: %d %v %v %v", h.Count(), h.rooms, h.services, h.agents)
	}
	if h.CloseAll(CloseGoingAway); h.Register(&fakeSub{}) {
		t.Fatal("registered after CloseAll")
	}
}

// resyncCounter is a receiver that can also resync.
type resyncCounter struct{ got, resyncs int }

func (r *resyncCounter) Broadcast(chat.Notification) { r.got++ }
func (r *resyncCounter) Resync()                     { r.resyncs++ }

// plainReceiver only takes notifications.
type plainReceiver struct{ got int }

func (r *plainReceiver) Broadcast(chat.Notification) { r.got++ }

func TestFanout(t *testing.T) {
	a, b := &resyncCounter{}, &plainReceiver{}
	f := NewFanout(a, b)
	f.Broadcast(chat.Notification{Kind: chat.NotifyQueue})
	f.Broadcast(chat.Notification{Kind: chat.NotifyAgent})
	f.Resync()
	if a.got != 2 || b.got != 2 || a.resyncs != 1 {
		t.Fatalf("deliveries %d and %d (want 2 each), resyncs %d (want 1)", a.got, b.got, a.resyncs)
	}
}
