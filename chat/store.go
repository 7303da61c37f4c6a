package chat

import (
	"context"
	"encoding/json"
	"time"

	"agentd/userdata"
)

// Store persists interactions. Every changing method is one transaction that also announces what
// it changed: NOTIFY to the other nodes (delivered at commit) and, after the commit, this node's
// subscribers. It is idempotent by CommandID where it takes one: the same (party, CommandID)
// answers with the first result without changing anything again.
type Store interface {
	StartInteraction(ctx context.Context, req StartRequest) (StartResult, error)
	// AuthenticateCustomer checks a session's secure key; a restore uses the session, so it also
	// closes the start retry.
	AuthenticateCustomer(ctx context.Context, interactionID string, keyHash []byte) (Interaction, Party, error)
	CloseStartRetry(ctx context.Context, interactionID string) error
	Interaction(ctx context.Context, interactionID string) (Interaction, error)
	Party(ctx context.Context, partyID string) (Party, error)
	AppendMessage(ctx context.Context, req MessageRequest) (Event, error)
	JoinParty(ctx context.Context, req JoinRequest) (Party, []Event, error)
	LeaveParty(ctx context.Context, req LeaveRequest) (LeaveResult, error)
	Events(ctx context.Context, interactionID string, fromIndex, limit int) ([]Event, error)
	SideItems(ctx context.Context, interactionID string, fromSeq int64, limit int) ([]SideItem, error)
	ChangeUserData(ctx context.Context, req UserDataRequest) (ChangeResult, error)
	UserData(ctx context.Context, interactionID string) ([]userdata.Entry, error)
	UserDataHistory(ctx context.Context, interactionID string) ([]userdata.HistoryEntry, error)
	AddNotice(ctx context.Context, req NoticeRequest) (Notice, error)
	QueuePositions(ctx context.Context, serviceID int64) (map[string]int, error)
	NotifyTyping(ctx context.Context, interactionID string, t Typing) error
}

// StartRequest creates an interaction with its customer party.
type StartRequest struct {
	ID             string // the new interaction's id (NewInteractionID); empty: Postgres picks one
	ServiceName    string
	CustomerName   string
	Subject        string
	Origin         string
	UserData       []userdata.Change
	SecureKeyHash  []byte
	StartTokenHash []byte // hash of the client's command id; a retry with the same id finds the session
	RetryWindow    time.Duration
	Limits         userdata.Limits
	At             time.Time // the chat's creation and queue time, from the service's clock
}

// StartResult is what StartInteraction created (or found, when Retried).
type StartResult struct {
	Interaction Interaction
	Party       Party
	Events      []Event
	Retried     bool
}

// MessageRequest appends a message to the transcript.
type MessageRequest struct {
	InteractionID string
	PartyID       string
	CommandID     string
	Text          string
	ContentType   string
}

// JoinRequest adds a party (an agent, usually) to an interaction.
type JoinRequest struct {
	InteractionID string
	Type          PartyType
	Name          string
	UserRef       string
}

// LeaveRequest removes a party. When End is set (the customer leaving, or an agent ending the
// chat) the session ends with Reason.
type LeaveRequest struct {
	InteractionID string
	PartyID       string
	CommandID     string
	End           bool
	Reason        EndReason
	At            time.Time // when the party left (and the session ended), from the service's clock
}

// LeaveResult reports what LeaveParty wrote.
type LeaveResult struct {
	Events []Event
	At     time.Time
}

// UserDataRequest changes UserData as the given actor.
type UserDataRequest struct {
	InteractionID string
	PartyID       string // empty for writes that come from no party (strategy, integrations)
	CommandID     string
	Actor         userdata.Owner
	ActorName     string
	Changes       []userdata.Change
	Limits        userdata.Limits
}

// ChangeResult reports a committed UserData change.
type ChangeResult struct {
	Seq      int64 // the last seq written; 0 when nothing changed
	At       time.Time
	Replayed bool // the command was applied before; this is its first result
}

// NoticeRequest stores a custom notice.
type NoticeRequest struct {
	InteractionID string
	PartyID       string
	CommandID     string
	Payload       json.RawMessage
	// Sender, with an empty PartyID, is the integration sending the notice through the API.
	Sender string
	// Audience is who is shown the notice; empty is everyone.
	Audience Audience
}
