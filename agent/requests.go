package agent

import (
	"encoding/json"
	"time"

	"agentd/chat"
	"agentd/userdata"
)

// SurveyLink is a newly issued survey token (only its hash is stored) and the SurveyURL that
// carries it. A chat keeps the first link it gets: the store attaches one only to a chat that
// has none.
type SurveyLink struct {
	TokenHash []byte
	URL       string
}

// AcceptRequest accepts an offer.
type AcceptRequest struct {
	UserID        int64
	InteractionID string
	AgentName     string
	// RoutedUserData is written as owner "strategy" in the same transaction.
	RoutedUserData []userdata.Change
	Survey         *SurveyLink // set when the strategy attaches the survey when the chat is routed
	Limits         userdata.Limits
}

// PickUpRequest has an agent take the oldest chat waiting in one of their services.
type PickUpRequest struct {
	UserID  int64
	Service string
	At      time.Time
	// Prepare builds the accept of the chat found (routed UserData, survey link) from its
	// service's strategy, in the commit.
	Prepare func(in chat.Interaction, st Strategy) AcceptRequest
}

// TransferRequest moves an active chat from one agent to a service queue or another agent.
type TransferRequest struct {
	UserID        int64
	InteractionID string
	Target        TransferTarget
	At            time.Time // the new queue time, and the start of an offer to a named agent
}

// EndRequest ends a chat on behalf of its agent.
type EndRequest struct {
	UserID        int64
	InteractionID string
	Survey        *SurveyLink // set when the strategy attaches the survey when the chat ends
	Limits        userdata.Limits
	At            time.Time
}

// WrapUpRequest finishes an agent's work on an ended chat.
type WrapUpRequest struct {
	UserID        int64
	InteractionID string
	Disposition   string
	Notes         string
	Limits        userdata.Limits
	AgentName     string
	Survey        *SurveyLink // for a chat the customer ended, when the strategy attaches it then
}

// UserDataEdit is an agent's change to a chat's UserData, audited in the same commit.
type UserDataEdit struct {
	UserID        int64
	InteractionID string
	CommandID     string // the console command id: a retried edit is applied (and audited) once
	AgentName     string
	Changes       []userdata.Change
	Limits        userdata.Limits
}

// CoBrowseRequest records that an agent joined the customer's co-browse session.
type CoBrowseRequest struct {
	UserID        int64
	InteractionID string
	AgentName     string
	Limits        userdata.Limits
	// Decide says what to write given the chat's UserData, read under the commit's lock; nil
	// means there is nothing to write.
	Decide func(current []userdata.Entry) (*CoBrowseWrite, error)
}

// CoBrowseWrite is what joining a co-browse session writes.
type CoBrowseWrite struct {
	AgentKeys  []userdata.Change // written as the agent
	SystemKeys []userdata.Change // agentd's own bookkeeping
	Notice     json.RawMessage   // sent to the customer
	Audit      map[string]any
}

// SurveyTarget is the interaction a survey token belongs to.
type SurveyTarget struct {
	InteractionID string
	ServiceID     int64
	Answered      bool
}
