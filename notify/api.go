package notify

import "time"

// The read models of the integrator REST API (/api/v1, docs/api.md): what postgres.APIStore
// returns and web/api serves.

// InteractionFilter selects interactions for GET /api/v1/interactions. Zero fields do not filter.
type InteractionFilter struct {
	ID           string     // one interaction
	State        string     // an interaction state (chat.State)
	Service      string     // a service name
	Agent        string     // the username of an agent who accepted the interaction
	UpdatedSince *time.Time // changed (transcript, UserData, notices, state) at or after
	// UserID restricts to the interactions this agent was assigned (offered or accepted): the
	// view of a token bound to a user.
	UserID int64
	// After continues a listing: interactions strictly after this one in the listing's order
	// (newest first, by creation time then id).
	After *InteractionCursor
	Limit int
}

// InteractionCursor is a position in the listing of interactions.
type InteractionCursor struct {
	CreatedAt time.Time
	ID        string
}

// InteractionSummary is one interaction in a listing.
type InteractionSummary struct {
	ID           string
	Service      string
	State        string
	CustomerName string
	Subject      string
	Agents       []string // usernames of the agents who accepted it, first first
	Disposition  string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	QueuedAt     *time.Time
	EndedAt      *time.Time
	EndReason    string
}

// AgentStatus is an agent as GET /api/v1/agents shows it.
type AgentStatus struct {
	Username       string
	DisplayName    string
	Role           string
	State          string
	NotReadyReason string
	Load           int // chats offered or active now
	Capacity       int
	Services       []string
}
