package customer

import (
	"sync"

	"agentd/chat"
	"agentd/web"
)

// eventFrames encodes a transcript event's customer frame once for all the sockets of this node
// that show it (a customer's second tab): every customer socket of an interaction gets the very
// same bytes for an event, so the first write pump to need them encodes them and the others
// share the slice. Entries are keyed by everything the frame holds, so a hit is byte for byte
// the frame that would have been encoded; the cache is bounded and simply starts over when full.
type eventFrames struct {
	mu     sync.Mutex
	frames map[frameKey][]byte
}

// maxCachedFrames bounds eventFrames: sockets of one interaction flush the same event within
// moments of each other, so a few hundred recent frames catch nearly every share.
const maxCachedFrames = 512

// frameKey is an eventJSON without pointers: equal keys encode to equal frames.
type frameKey struct {
	index                         int
	kind, reason                  string
	timestamp                     int64
	hasParty                      bool
	partyID, partyName, partyType string
	hasContent                    bool
	contentText, contentType      string
}

func keyOf(e eventJSON) frameKey {
	k := frameKey{index: e.Index, kind: e.Kind, reason: e.Reason, timestamp: e.Timestamp}
	if e.Party != nil {
		k.hasParty, k.partyID, k.partyName, k.partyType = true, e.Party.ID, e.Party.Name, e.Party.Type
	}
	if e.Content != nil {
		k.hasContent, k.contentText, k.contentType = true, e.Content.Text, e.Content.Type
	}
	return k
}

// get returns ev's customer frame, encoded once. The slice is shared: never modify it.
func (f *eventFrames) get(ev chat.Event) ([]byte, error) {
	e := eventOf(ev)
	k := keyOf(e)
	f.mu.Lock()
	b, ok := f.frames[k]
	f.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := web.MarshalFrame(eventFrame{Type: "event", Event: e})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.frames == nil || len(f.frames) >= maxCachedFrames {
		f.frames = make(map[frameKey][]byte, maxCachedFrames)
	}
	f.frames[k] = b
	f.mu.Unlock()
	return b, nil
}

// writeEvent writes an event's frame (write pump only): shared with the interaction's other
// sockets on this node when it has any, encoded for this socket alone otherwise.
func (c *conn) writeEvent(iid string, ev chat.Event) error {
	if c.s.hub.Members(iid) < 2 {
		return c.Write(eventFrame{Type: "event", Event: eventOf(ev)})
	}
	b, err := c.s.frames.get(ev)
	if err != nil {
		return err
	}
	return c.WriteFrame(b)
}
