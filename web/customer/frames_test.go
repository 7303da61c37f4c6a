package customer

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"agentd/chat"
	"agentd/web"
)

// TestEventFramesShared: the frame shared between an interaction's sockets is byte for byte the
// one each socket encoded for itself before, encoded once, and never another event's.
func TestEventFramesShared(t *testing.T) {
	at := time.UnixMilli(1_767_000_000_123)
	agent := &chat.Party{ID: "p-agent", Type: chat.PartyAgent, Name: "Alice <b>"}
	events := []chat.Event{
		{InteractionID: "i1", Index: 0, Kind: chat.EventPartyJoined, Party: &chat.Party{ID: "p-cust", Type: chat.PartyClient, Name: "Ann"}, At: at},
		{InteractionID: "i1", Index: 1, Kind: chat.EventMessage, Party: agent, Text: "héllo \"you\" <3", ContentType: chat.ContentText, At: at},
		{InteractionID: "i1", Index: 2, Kind: chat.EventNotice, Text: "Welcome", ContentType: chat.ContentNotice, At: at},
		{InteractionID: "i1", Index: 3, Kind: chat.EventSessionEnded, Reason: chat.EndReason("agent_ended"), At: at},
		// The same index and party as event 1 with another text, and in another interaction.
		{InteractionID: "i2", Index: 1, Kind: chat.EventMessage, Party: agent, Text: "other", ContentType: chat.ContentText, At: at},
	}
	var f eventFrames
	seen := map[string]bool{}
	for _, ev := range events {
		want, err := web.MarshalFrame(eventFrame{Type: "event", Event: eventOf(ev)})
		if err != nil {
			t.Fatal(err)
		}
		first, err := f.get(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, want) {
			t.Fatalf("shared frame\n%s\nwant the frame encoded per socket\n%s", first, want)
		}
		again, _ := f.get(ev)
		if &again[0] != &first[0] {
			t.Fatalf("event %d encoded twice", ev.Index)
		}
		if seen[string(first)] {
			t.Fatalf("two events share the frame %s", first)
		}
		seen[string(first)] = true
	}
	// Bounded: past maxCachedFrames it starts over, and still answers right.
	for i := range maxCachedFrames + 10 {
		ev := chat.Event{Index: i, Kind: chat.EventMessage, Party: agent, Text: fmt.Sprint("m", i), ContentType: chat.ContentText, At: at}
		b, _ := f.get(ev)
		want, _ := web.MarshalFrame(eventFrame{Type: "event", Event: eventOf(ev)})
		if !bytes.Equal(b, want) {
			t.Fatalf("frame %d: %s, want %s", i, b, want)
		}
	}
	if n := len(f.frames); n > maxCachedFrames {
		t.Fatalf("%d cached frames, bound %d", n, maxCachedFrames)
	}
}
