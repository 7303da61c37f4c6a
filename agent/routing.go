package agent

import (
	"time"

	"agentd/chat"
)

// AssignmentState is the state of one offer of an interaction to an agent.
type AssignmentState string

// Assignment states. An agent's load is its offered and active assignments; an active one stays
// active through wrap-up until the agent presses Done.
const (
	AssignOffered     AssignmentState = "offered"
	AssignActive      AssignmentState = "active"
	AssignDone        AssignmentState = "done"
	AssignDeclined    AssignmentState = "declined"
	AssignTimedOut    AssignmentState = "timed_out"
	AssignWithdrawn   AssignmentState = "withdrawn"
	AssignTransferred AssignmentState = "transferred"
)

// Assignment is an interaction as one agent sees it.
type Assignment struct {
	ID            int64
	InteractionID string
	UserID        int64
	State         AssignmentState
	PartyID       string
	OfferedAt     time.Time
	ExpiresAt     *time.Time
	AcceptedAt    *time.Time
	Interaction   chat.Interaction
}

// Offer is the outcome of one routing decision.
type Offer struct {
	AssignmentID  int64
	InteractionID string
	ServiceID     int64
	UserID        int64
	AutoAnswered  bool
	ExpiresAt     time.Time
}

// TransferTarget is where a chat is transferred: a service (queue) or a ready agent.
type TransferTarget struct {
	Service string
	UserID  int64
}

// RecentChat is a chat an agent finished.
type RecentChat struct {
	InteractionID string
	Customer      string
	EndedAt       time.Time
	Disposition   string
	CSAT          string
}
