package agent

import "time"

// The figures of the supervisors' live dashboard (docs/supervisor.md, "Live dashboard"), read by
// postgres.DashboardStore and shown by web/supervisor.

// QueueStat is one service's queue: what waits now, and what arrived today.
type QueueStat struct {
	ServiceID   int64
	Service     string // the service's name
	DisplayName string
	Waiting     int        // chats not yet accepted by an agent (queued or offered)
	OldestSince *time.Time // when the longest-waiting of them entered the queue; nil when none waits
	Offered     int        // chats that entered the service's queue since the start of the day
	Active      int        // chats an agent has accepted and that have not ended
	Abandoned   int        // of today's chats, those the customer left before an agent accepted
}

// AgentStat is one user who takes chats, as the dashboard lists them.
type AgentStat struct {
	ID             int64
	Username       string
	DisplayName    string
	Role           Role
	State          State
	NotReadyReason string
	StateSince     time.Time
	Load           int // open assignments: offered and active, as the router counts them
	Capacity       int
}

// LiveChat is one chat an agent has accepted and that has not ended.
type LiveChat struct {
	ID           string
	Customer     string
	Service      string   // the service's display name
	Agents       []string // the names of the agents and supervisors in the chat now
	StartedAt    time.Time
	PendingSince *time.Time // the customer's oldest message not yet answered; nil when none waits
}

// Figures are the dashboard's chart figures of the chats that arrived in one period.
type Figures struct {
	Start     time.Time
	Chats     int            // chats that arrived (entered the queue) in the period
	Answered  int            // of them, those an agent accepted
	Abandoned int            // of them, those the customer left before an agent accepted
	AvgWait   *time.Duration // arrival → the first agent's acceptance, over the answered chats
	P90Wait   *time.Duration // the 90th percentile (continuous) of the same waits
	AvgHandle *time.Duration // the first agent's acceptance → the end, over the answered chats that ended
	Rated     int            // chats with a CSAT answer (1–5) in their survey
	AvgCSAT   *float64       // the average of those answers
}

// DispositionCount is how many chats of a period were wrapped up with one disposition.
type DispositionCount struct {
	Disposition string
	Count       int
}
