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

// TestHubWatchAll: a connection that watches everything gets every notification of every
// interaction, queue and agent, but no typing of chats it is not attached to, once even when it
// is also attached, and nothing after it left.
func TestHubWatchAll(t *testing.T) {
	h := NewHub()
	dash, console := &fakeSub{}, &fakeSub{}
	h.Register(dash)
	h.Register(console)
	h.WatchAll(dash)
	h.Watch(console, 42, []int64{7})
	h.Attach(dash, "chat-1")
	for _, n := range []chat.Notification{
		{Kind: chat.NotifyEvents, InteractionID: "chat-1"},
		{Kind: chat.NotifyEvents, InteractionID: "chat-9"},
		{Kind: chat.NotifySide, InteractionID: "chat-9"},
		{Kind: chat.NotifyQueue, ServiceID: 7},
		{Kind: chat.NotifyQueue, ServiceID: 3},
		{Kind: chat.NotifyAgent, UserID: 42},
		{Kind: chat.NotifyAgent, UserID: 5},
		{Kind: chat.NotifyTyping, InteractionID: "chat-9", Typing: &chat.Typing{}},
	} {
		h.Broadcast(n)
	}
	if len(dash.got) != 7 || len(console.got) != 2 {
		t.Fatalf("deliveries: dashboard %d (want 7), console %d (want 2)", len(dash.got), len(console.got))
	}
	for _, n := range dash.got {
		if n.Kind == chat.NotifyTyping {
			t.Fatal("typing delivered to a dashboard")
		}
	}
	h.WatchAll(&fakeSub{}) // not registered: ignored
	h.Unregister(dash)
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 3})
	if len(dash.got) != 7 || len(h.everyone) != 0 {
		t.Fatalf("delivered after unregister, or left in the hub: %d %v", len(dash.got), h.everyone)
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
