package postgres

import (
	"bytes"
	"encoding/json"
	"time"

	"agentd/chat"
)

// NotifyChannel is the LISTEN/NOTIFY channel every node uses.
const NotifyChannel = "agentd_events"

// wireNote is one notification of a NOTIFY payload: ids and positions, never bodies (typing
// excepted, which is small, ephemeral and has nothing to read back). A payload is one note (a
// JSON object, what every node sent before group commit, and still what a transaction with one
// notification sends) or several (a JSON array of them, wirePayloads). Postgres limits a payload
// to 8000 bytes; the largest note is a typing preview of 1024 characters.
type wireNote struct {
	Kind        string      `json:"k"` // e events, s side channel, t typing, q queue, a agent
	Node        string      `json:"o"`
	Interaction string      `json:"i,omitempty"`
	Service     int64       `json:"s,omitempty"`
	User        int64       `json:"u,omitempty"`
	N           int64       `json:"n,omitempty"`
	Typing      *wireTyping `json:"t,omitempty"`
}

type wireTyping struct {
	PartyID   string `json:"p"`
	PartyType string `json:"y"`
	PartyName string `json:"m"`
	IsTyping  bool   `json:"on"`
	Text      string `json:"x,omitempty"`
	At        int64  `json:"a"`
}

// wireOf is the NOTIFY form of a notification sent by node.
func wireOf(n chat.Notification, node string) wireNote {
	w := wireNote{Node: node, Interaction: n.InteractionID, Service: n.ServiceID, User: n.UserID}
	switch n.Kind {
	case chat.NotifyEvents:
		w.Kind, w.N = "e", int64(n.Index)
	case chat.NotifySide:
		w.Kind, w.N = "s", n.Seq
	case chat.NotifyQueue:
		w.Kind = "q"
	case chat.NotifyAgent:
		w.Kind = "a"
	case chat.NotifyTyping:
		w.Kind = "t"
		if t := n.Typing; t != nil {
			w.Typing = &wireTyping{PartyID: t.Party.ID, PartyType: string(t.Party.Type), PartyName: t.Party.Name,
				IsTyping: t.IsTyping, Text: t.Text, At: t.At.UnixMilli()}
		}
	}
	return w
}

// notification is what a received NOTIFY payload tells this node.
func (w wireNote) notification() (chat.Notification, bool) {
	switch w.Kind {
	case "e":
		return chat.Notification{Kind: chat.NotifyEvents, InteractionID: w.Interaction, Index: int(w.N)}, true
	case "s":
		return chat.Notification{Kind: chat.NotifySide, InteractionID: w.Interaction, Seq: w.N}, true
	case "q":
		return chat.Notification{Kind: chat.NotifyQueue, ServiceID: w.Service}, true
	case "a":
		return chat.Notification{Kind: chat.NotifyAgent, UserID: w.User}, true
	case "t":
		if w.Typing == nil {
			return chat.Notification{}, false
		}
		t := w.Typing
		return chat.Notification{Kind: chat.NotifyTyping, InteractionID: w.Interaction, Typing: &chat.Typing{
			Party:    chat.Party{ID: t.PartyID, InteractionID: w.Interaction, Type: chat.PartyType(t.PartyType), Name: t.PartyName},
			IsTyping: t.IsTyping, Text: t.Text, At: time.UnixMilli(t.At),
		}}, true
	}
	return chat.Notification{}, false
}

// maxPayload is the largest NOTIFY payload sent: Postgres refuses one of 8000 bytes or more.
const maxPayload = 7999

// wirePayloads packs encoded notes, in order, into as few payloads of at most limit bytes as
// they fit: a single note as itself (readable by nodes that predate arrays), several as a JSON
// array. A note longer than limit on its own (none is) would go alone and fail loudly at NOTIFY.
func wirePayloads(notes [][]byte, limit int) []string {
	var out []string
	var buf bytes.Buffer
	n := 0 // notes in buf
	flush := func() {
		switch n {
		case 0:
			return
		case 1:
			out = append(out, string(buf.Bytes()[1:])) // without the '['
		default:
			buf.WriteByte(']')
			out = append(out, buf.String())
		}
		buf.Reset()
		n = 0
	}
	for _, b := range notes {
		// '[' + notes joined by ',' + ']'
		if n > 0 && buf.Len()+1+len(b)+1 > limit {
			flush()
		}
		if n == 0 {
			buf.WriteByte('[')
		} else {
			buf.WriteByte(',')
		}
		buf.Write(b)
		n++
	}
	flush()
	return out
}

// decodePayload reads a NOTIFY payload: one note, or an array of them.
func decodePayload(payload string) ([]wireNote, error) {
	p := bytes.TrimLeft([]byte(payload), " \t\r\n")
	if len(p) > 0 && p[0] == '[' {
		var ws []wireNote
		err := json.Unmarshal(p, &ws)
		return ws, err
	}
	var w wireNote
	if err := json.Unmarshal(p, &w); err != nil {
		return nil, err
	}
	return []wireNote{w}, nil
}
