package web

import (
	"context"
	"encoding/json"
	"time"

	"agentd/chat"
	"agentd/userdata"
)

// flush brings the client up to date: events handed over in memory when they are the next ones,
// otherwise a read from Postgres from the client's position; then side-channel items, typing and
// the queue position. It reports false when the socket failed.
func (c *conn) flush(ctx context.Context) bool {
	c.mu.Lock()
	s := c.sess
	if s == nil {
		c.mu.Unlock()
		return true
	}
	eventsDirty, pending := c.eventsDirty, c.pending
	sideDirty, queueDirty, typing := c.sideDirty, c.queueDirty, c.typing
	c.eventsDirty, c.pending, c.sideDirty, c.queueDirty, c.typing = false, nil, false, false, nil
	next, nextSeq := c.nextIndex, c.nextSeq
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	retry := false
	movedService := false // an agent left: the chat may have been transferred to another service
	left := func(ev chat.Event) {
		if ev.Kind == chat.EventPartyLeft && ev.Party != nil && ev.Party.Type != chat.PartyClient {
			movedService = true
		}
	}

	for _, ev := range pending {
		if ev.Index < next {
			continue
		}
		if ev.Index > next {
			eventsDirty = true // a gap: what is missing is in Postgres
			break
		}
		if !c.writeJSON(eventFrame{Type: "event", Event: eventOf(ev)}) {
			return false
		}
		left(ev)
		next++
	}
	for eventsDirty {
		evs, err := c.srv.chat.Transcript(ctx, s.interactionID, next, chat.MaxTranscriptPage)
		if err != nil {
			c.logger.Warn("catch up events", "err", err)
			retry = true
			break
		}
		for _, ev := range evs {
			if !c.writeJSON(eventFrame{Type: "event", Event: eventOf(ev)}) {
				return false
			}
			left(ev)
			next = ev.Index + 1
		}
		eventsDirty = len(evs) == chat.MaxTranscriptPage
	}

	for sideDirty {
		items, err := c.srv.chat.SideItems(ctx, s.interactionID, nextSeq, chat.MaxTranscriptPage)
		if err != nil {
			c.logger.Warn("catch up side channel", "err", err)
			retry = true
			break
		}
		for _, it := range items {
			if frame := sideFrame(it, s.party); frame != nil && !c.writeJSON(frame) {
				return false
			}
			nextSeq = it.Seq + 1
		}
		sideDirty = len(items) == chat.MaxTranscriptPage
	}

	for _, t := range typing {
		if !c.writeJSON(typingFrame{Type: "typing", Party: partyOf(t.Party), IsTyping: t.IsTyping, Text: t.Text, Timestamp: millis(t.At)}) {
			return false
		}
	}

	if movedService {
		// A transfer moved the chat to another service: follow that queue's position now.
		if in, err := c.srv.chat.Interaction(ctx, s.interactionID); err == nil && in.ServiceID != s.serviceID {
			c.srv.hub.detach(c, s.interactionID, s.serviceID)
			c.srv.hub.attach(c, s.interactionID, in.ServiceID)
			c.mu.Lock()
			c.sess.serviceID = in.ServiceID
			c.mu.Unlock()
			queueDirty = true
		}
	}

	c.mu.Lock()
	if next > c.nextIndex {
		c.nextIndex = next
	}
	if nextSeq > c.nextSeq {
		c.nextSeq = nextSeq
	}
	lastQueue := c.lastQueue
	c.mu.Unlock()

	if queueDirty {
		pos, err := c.srv.queues.position(ctx, s.serviceID, s.interactionID)
		if err != nil {
			c.logger.Warn("queue position", "err", err)
			retry = true
		} else if pos != lastQueue {
			c.mu.Lock()
			c.lastQueue = pos
			c.mu.Unlock()
			if pos > 0 && !c.writeJSON(queueFrame{Type: "queue", Position: pos, Timestamp: millis(time.Now())}) {
				return false
			}
		}
	}

	if retry {
		// Postgres is briefly unavailable: try again later instead of losing the wake-up.
		c.mu.Lock()
		c.eventsDirty, c.sideDirty, c.queueDirty = true, true, true
		c.mu.Unlock()
		time.AfterFunc(time.Second, c.signal)
	}
	return true
}

// sideFrame turns a side-channel item into the frame the customer gets, or nil when the customer
// must not see it: its own notices and UserData changes, and changes to keys it cannot see.
func sideFrame(it chat.SideItem, self chat.Party) any {
	switch {
	case it.Notice != nil:
		if it.Notice.Party.ID == self.ID {
			return nil
		}
		return noticeFrame{Type: "notice", Seq: it.Seq, Party: partyOf(it.Notice.Party), Payload: it.Notice.Payload, Timestamp: millis(it.Notice.At)}
	case it.Change != nil:
		h := it.Change
		if h.Owner == userdata.OwnerClient || (!h.Visible && !h.WasVisible) {
			return nil
		}
		value := json.RawMessage("null")
		if h.Op == userdata.OpSet && h.Visible {
			value = h.NewValue
		}
		return userdataFrame{Type: "userdata", Seq: it.Seq, Changes: map[string]json.RawMessage{h.Key: value}, Timestamp: millis(h.At)}
	}
	return nil
}
