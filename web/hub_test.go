package web

import (
	"testing"

	"agentd/chat"
)

type fakeSub struct{ got []chat.Notification }

func (f *fakeSub) notify(n chat.Notification) { f.got = append(f.got, n) }
func (f *fakeSub) resync()                    {}
func (f *fakeSub) closeWith(int, string)      {}

func TestHubRouting(t *testing.T) {
	h := NewHub()
	customer, console, other := &fakeSub{}, &fakeSub{}, &fakeSub{}
	for _, s := range []subscriber{customer, console, other} {
		if !h.register(s) {
			t.Fatal("register refused")
		}
	}
	h.attach(customer, "chat-1", 7)
	h.attach(console, "chat-1", 0)
	h.watch(console, 42, []int64{7, 8})
	h.attach(other, "chat-2", 8)

	h.Broadcast(chat.Notification{Kind: chat.NotifyEvents, InteractionID: "chat-1"})
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 7})
	h.Broadcast(chat.Notification{Kind: chat.NotifyAgent, UserID: 42})
	h.Broadcast(chat.Notification{Kind: chat.NotifyQueue, ServiceID: 8})
	if len(customer.got) != 2 || len(console.got) != 4 || len(other.got) != 1 {
		t.Fatalf("deliveries: customer %d (want 2), console %d (want 4), other %d (want 1)", len(customer.got), len(console.got), len(other.got))
	}

	h.detach(console, "chat-1", 0)
	h.unregister(customer)
	h.Broadcast(chat.Notification{Kind: chat.NotifyEvents, InteractionID: "chat-1"})
	if len(customer.got) != 2 || len(console.got) != 4 {
		t.Fatal("delivered after detach/unregister")
	}
	h.unregister(console)
	h.unregister(other)
	if h.Count() != 0 || len(h.rooms) != 0 || len(h.services) != 0 || len(h.agents) != 0 {
		t.Fatalf("hub not empty after everyone left: %d %v %v %v", h.Count(), h.rooms, h.services, h.agents)
	}
	if h.CloseAll(1001, "bye"); h.register(&fakeSub{}) {
		t.Fatal("registered after CloseAll")
	}
}

func TestValidUTF8Frame(t *testing.T) {
	for frame, want := range map[string]bool{
		`{"t":"plain"}`:              true,
		`{"t":"\ud83d\ude00"}`:       true,  // a surrogate pair
		`{"t":"\\ud800"}`:            true,  // an escaped backslash, not an escape
		`{"t":"\ud800"}`:             false, // lone high surrogate
		`{"t":"\udc00"}`:             false, // lone low surrogate
		`{"t":"\ud800\u0041"}`:       false, // high surrogate followed by a non-surrogate
		"{\"t\":\"\xff\"}":           false, // invalid UTF-8 bytes
		`{"t":"\ud83d\ude00\ud800"}`: false,
		`{"t":"end with \ud83d"}`:    false,
	} {
		if got := validUTF8Frame([]byte(frame)); got != want {
			t.Errorf("validUTF8Frame(%s) = %v, want %v", frame, got, want)
		}
	}
}
