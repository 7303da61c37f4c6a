package customer

import (
	"context"
	"encoding/json"
	"time"

	"agentd/chat"
	"agentd/userdata"
	"agentd/web"
)

// Flush brings the client up to date (the write pump calls it): events handed over in memory
// when they are the next ones, otherwise a read from Postgres from the client's position; then
// side-channel items, typing and the queue position. A failed read returns its error; the core
// then gives every mark back and flushes again, so what was missed is delivered later, never
// lost. Positions advance only past what was written.
func (c *conn) Flush(ctx context.Context, d web.Dirty) error {
	c.mu.Lock()
	if c.sess == nil {
		c.mu.Unlock()
		return nil
	}
	s := *c.sess
	next, nextSeq := c.nextIndex, c.nextSeq
	c.mu.Unlock()

	iid := s.interactionID
	eventsDirty := d.Has(chat.NotifyEvents, iid)
	left := func(ev chat.Event) {
		if ev.Kind == chat.EventPartyLeft && ev.Party != nil && ev.Party.Type != chat.PartyClient {
			// An agent left: the chat may have been transferred to another service. Kept on the
			// connection until checked, so a failed check is retried with the next flush.
			c.mu.Lock()
			c.checkService = true
			c.mu.Unlock()
		}
	}
	advance := func() {
		c.mu.Lock()
		c.nextIndex, c.nextSeq = max(c.nextIndex, next), max(c.nextSeq, nextSeq)
		c.mu.Unlock()
	}
	defer advance()

	for _, ev := range d.Events(iid) {
		if ev.Index < next {
			continue
		}
		if ev.Index > next {
			eventsDirty = true // a gap: what is missing is in Postgres
			break
		}
		if err := c.writeEvent(iid, ev); err != nil {
			return err
		}
		left(ev)
		next++
	}
	for eventsDirty {
		evs, err := c.s.chat.Transcript(ctx, iid, next, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := c.writeEvent(iid, ev); err != nil {
				return err
			}
			left(ev)
			next = ev.Index + 1
		}
		eventsDirty = len(evs) == chat.MaxTranscriptPage
	}

	for sideDirty := d.Has(chat.NotifySide, iid); sideDirty; {
		items, err := c.s.chat.SideItems(ctx, iid, nextSeq, chat.MaxTranscriptPage)
		if err != nil {
			return err
		}
		for _, it := range items {
			if frame := sideFrame(it, s.party); frame != nil {
				if err := c.Write(frame); err != nil {
					return err
				}
			}
			nextSeq = it.Seq + 1
		}
		sideDirty = len(items) == chat.MaxTranscriptPage
	}

	for _, t := range d.Typing() {
		if err := c.Write(typingFrame{Type: "typing", Party: partyOf(t.Party), IsTyping: t.IsTyping, Text: t.Text, Timestamp: millis(t.At)}); err != nil {
			return err
		}
	}

	c.mu.Lock()
	check := c.checkService
	c.mu.Unlock()
	if check {
		// A transfer may have moved the chat to another service: follow that queue's position.
		in, err := c.s.chat.Interaction(ctx, iid)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.checkService = false
		moved := in.ServiceID != c.sess.serviceID
		c.sess.serviceID = in.ServiceID
		c.mu.Unlock()
		if moved {
			c.s.positions.add(c, in.ServiceID)
		}
	}

	c.mu.Lock()
	pos, sent := c.queuePos, c.sentQueue
	c.sentQueue = pos
	c.mu.Unlock()
	if pos != sent && pos > 0 {
		if err := c.Write(queueFrame{Type: "queue", Position: pos, Timestamp: millis(time.Now())}); err != nil {
			return err
		}
	}
	return nil
}

// sideFrame turns a side-channel item into the frame the customer gets, or nil when the customer
// must not see it: its own notices and UserData changes, notices for the agent only, and
// changes to keys it cannot see.
func sideFrame(it chat.SideItem, self chat.Party) any {
	switch {
	case it.Notice != nil:
		if it.Notice.Party.ID == self.ID || it.Notice.Audience == chat.AudienceAgent {
			return nil // its own, or an integrator's notice meant for the agent's console only
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
