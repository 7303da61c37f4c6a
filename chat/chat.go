// Package chat holds interactions, parties, the transcript, custom notices and the session service
// that customer and agent commands go through. It knows nothing of HTTP or SQL: the web surfaces
// and the agent package call it, and it persists through the Store it is given, whose every
// changing method is one commit that also announces what changed (Notification).
package chat

import (
	"encoding/json"
	"time"

	"agentd/userdata"
)

// PartyType is the kind of participant.
type PartyType string

// Party types, as in the JS API's party.type flags.
const (
	PartyClient     PartyType = "client"
	PartyAgent      PartyType = "agent"
	PartySupervisor PartyType = "supervisor"
	PartyExternal   PartyType = "external"
)

// Owner returns the UserData owner for writes made by a party of this type.
func (t PartyType) Owner() userdata.Owner {
	switch t {
	case PartyClient:
		return userdata.OwnerClient
	case PartyExternal:
		return userdata.OwnerSystem
	default:
		return userdata.OwnerAgent
	}
}

// State is an interaction's lifecycle state.
type State string

// Interaction states: queued → offered → active → ended → wrapped, or abandoned when the customer
// leaves before an agent joined.
const (
	StateQueued    State = "queued"
	StateOffered   State = "offered"
	StateActive    State = "active"
	StateEnded     State = "ended"
	StateWrapped   State = "wrapped"
	StateAbandoned State = "abandoned"
)

// Over reports whether the chat part of the interaction is finished.
func (s State) Over() bool { return s == StateEnded || s == StateWrapped || s == StateAbandoned }

// EndReason says why a session ended; the JS API exposes it as reason.leaveRequest etc.
type EndReason string

// End reasons.
const (
	EndLeaveRequest EndReason = "leave_request"
	EndAgent        EndReason = "agent"
	EndError        EndReason = "error"
	EndTimeout      EndReason = "timeout"
)

// Interaction is one chat.
type Interaction struct {
	ID           string
	ServiceID    int64
	ServiceName  string
	State        State
	CustomerName string
	Subject      string
	NextIndex    int   // index the next transcript event will get
	NextSeq      int64 // seq the next notice or UserData change will get
	CreatedAt    time.Time
	QueuedAt     *time.Time
	EndedAt      *time.Time
	EndReason    EndReason
	PendingSince *time.Time // the oldest customer message no one answered yet; nil when none
}

// Party is a participant of an interaction.
type Party struct {
	ID            string
	InteractionID string
	Type          PartyType
	Name          string
	UserRef       string // the agent's user id; empty for the customer
	JoinedAt      time.Time
	LeftAt        *time.Time
}

// EventKind is the kind of a transcript event.
type EventKind string

// Transcript event kinds. Typing is deliberately not one: it is ephemeral.
const (
	EventPartyJoined  EventKind = "party_joined"
	EventPartyLeft    EventKind = "party_left"
	EventMessage      EventKind = "message"
	EventNotice       EventKind = "notice"
	EventSessionEnded EventKind = "session_ended"
)

// Content types of message events.
const (
	ContentText   = "text"
	ContentURL    = "url"
	ContentNotice = "notice"
)

// Event is one persisted transcript event. Index is contiguous per interaction from 0.
type Event struct {
	InteractionID string
	Index         int
	Kind          EventKind
	Party         *Party // nil for system events without a party
	Text          string
	ContentType   string
	Reason        EndReason // session_ended only
	At            time.Time
}

// Notice is a custom notice: a payload exchanged outside the transcript.
type Notice struct {
	InteractionID string
	Seq           int64
	Party         Party // an integrator's notice has no party: Type external, Name its sender
	Payload       json.RawMessage
	At            time.Time
	// Sender is the integration (integration:<token name>) that sent the notice through the
	// API; empty for a party's notice.
	Sender string
	// Audience is who is shown the notice: everyone (the customer and the console), or only
	// the agent's console.
	Audience Audience
}

// Audience is who is shown a notice.
type Audience string

// The audiences of a notice.
const (
	AudienceAll   Audience = "all"   // the customer and the console
	AudienceAgent Audience = "agent" // the agent's console only, never sent to the customer
)

// SideItem is one entry of an interaction's side channel, ordered by Seq: either a custom notice
// or a UserData change.
type SideItem struct {
	Seq    int64
	Notice *Notice
	Change *userdata.HistoryEntry
}

// Typing is an ephemeral typing notification.
type Typing struct {
	Party    Party
	IsTyping bool
	Text     string
	At       time.Time
}

// Strategy is the per-service configuration that the chat core applies. The routing part of it
// (accept timeout, auto-answer, ...) belongs to the agent package and is kept in the same JSON.
type Strategy struct {
	WelcomeNotice string `json:"welcome_notice,omitempty"`
}

// WhisperSenderPrefix starts the sender of a supervisor's whisper: "supervisor:<username>". An
// integrator's notice is always "integration:<name>" and a party's notice has a party, so no one
// else can send a notice that reads as a whisper.
const WhisperSenderPrefix = "supervisor:"

// Whisper is what a whisper notice says: who sent it and its text.
type Whisper struct {
	From string // the supervisor's display name
	Text string
}

// WhisperPayload is the payload a whisper is stored with.
func WhisperPayload(from, text string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"type": "whisper", "from": from, "text": text})
	return b
}

// Whisper reports whether n is a supervisor's whisper to the agent (docs/supervisor.md): a
// notice for the agent only, from no party, sent by supervisor:<username>.
func (n Notice) Whisper() (Whisper, bool) {
	if n.Party.ID != "" || n.Audience != AudienceAgent || len(n.Sender) <= len(WhisperSenderPrefix) ||
		n.Sender[:len(WhisperSenderPrefix)] != WhisperSenderPrefix {
		return Whisper{}, false
	}
	var p struct {
		Type string `json:"type"`
		From string `json:"from"`
		Text string `json:"text"`
	}
	if json.Unmarshal(n.Payload, &p) != nil || p.Type != "whisper" {
		return Whisper{}, false
	}
	return Whisper{From: p.From, Text: p.Text}, true
}
