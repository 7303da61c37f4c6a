package agent

import "agentd/userdata"

// AcceptRequest accepts an offer.
type AcceptRequest struct {
	UserID        int64
	InteractionID string
	AgentName     string
	// RoutedUserData is written as owner "strategy" in the same transaction (SurveyURL, ...).
	RoutedUserData  []userdata.Change
	SurveyTokenHash []byte // set when the survey URL is attached now
	SurveyURL       string // written as SurveyURL only if this chat had no survey token yet
	Limits          userdata.Limits
}

// TransferRequest moves an active chat from one agent to a service queue or another agent.
type TransferRequest struct {
	UserID        int64
	InteractionID string
	Target        TransferTarget
}

// WrapUpRequest finishes an agent's work on an ended chat.
type WrapUpRequest struct {
	UserID        int64
	InteractionID string
	Disposition   string
	Notes         string
	Limits        userdata.Limits
	// EndedUserData is written when the chat had not been ended before (strategy "ended" keys).
	AgentName string
}

// SurveyTarget is the interaction a survey token belongs to.
type SurveyTarget struct {
	InteractionID string
	ServiceID     int64
	Answered      bool
}
