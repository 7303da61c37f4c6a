package postgres

import (
	"time"

	"agentd/chat"
)

// NotifyChannel is the LISTEN/NOTIFY channel every node uses.
const NotifyChannel = "agentd_events"

// wireNote is the NOTIFY payload: ids and positions, never bodies (typing excepted, which is
// small, ephemeral and has nothing to read back). Postgres limits a payload to 8000 bytes; the
// largest note is a typing preview of 1024 characters.
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
