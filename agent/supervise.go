package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"agentd"
	"agentd/chat"
)

// Monitor is one supervisor's live monitoring of a chat (a monitor page open on it).
type Monitor struct {
	ID            string // the monitoring session, one per open page
	InteractionID string
	UserID        int64
	Name          string // the supervisor's display name
	StartedAt     time.Time
}

// SuperviseStore is what Supervision needs from storage. Every changing method is one commit with
// its audit row (supervisor.monitor_start, supervisor.monitor_stop, supervisor.whisper,
// supervisor.barge_in, supervisor.message, supervisor.leave) and the notifications it causes.
type SuperviseStore interface {
	// StartMonitor records a monitoring session and tells the chat's agents.
	StartMonitor(ctx context.Context, m Monitor) error
	// RenewMonitor renews the session's heartbeat.
	RenewMonitor(ctx context.Context, monitorID string) error
	// StopMonitor deletes the session and tells the chat's agents; stopping twice is a no-op.
	StopMonitor(ctx context.Context, m Monitor) error
	// Monitors returns the live monitoring sessions of a chat (heartbeat within the TTL).
	Monitors(ctx context.Context, interactionID string) ([]Monitor, error)
	// Whisper stores a whisper for the agent; it fails with session_ended once the chat is over.
	Whisper(ctx context.Context, w WhisperRequest) (chat.Notice, error)
	// BargeIn joins the supervisor as a supervisor party (one at a time per chat).
	BargeIn(ctx context.Context, u User, interactionID string) (chat.Party, error)
	// SupervisorSend appends a message from the supervisor's party.
	SupervisorSend(ctx context.Context, u User, interactionID, commandID, text string) (chat.Event, error)
	// SupervisorLeave makes the supervisor's party leave; the chat stays with its agent.
	SupervisorLeave(ctx context.Context, u User, interactionID string) error
}

// WhisperRequest is a whisper from a supervisor to the agents of a chat.
type WhisperRequest struct {
	InteractionID string
	User          User
	Text          string
}

// SuperviseDeps is what Supervision is built from.
type SuperviseDeps struct {
	Store           SuperviseStore
	MaxMessageChars int // the chat core's message limit (chat.Config.MaxMessageChars)
}

// Supervision is a supervisor's live work on a chat: monitoring, whispering, barging in,
// writing and leaving. Every method checks the user's role itself, so no surface can call it for
// an agent by mistake.
type Supervision struct {
	store    SuperviseStore
	maxChars int
}

// NewSupervision returns the supervisors' service.
func NewSupervision(d SuperviseDeps) *Supervision {
	if d.MaxMessageChars <= 0 {
		d.MaxMessageChars = 4096
	}
	return &Supervision{store: d.Store, maxChars: d.MaxMessageChars}
}

// CanSupervise reports whether u may monitor, whisper and barge in: an enabled supervisor or admin.
func CanSupervise(u User) error {
	if u.Disabled || !u.Role.AtLeast(RoleSupervisor) {
		return agentd.Errorf(agentd.EFORBIDDEN, "forbidden", "Only supervisors and admins can monitor chats.")
	}
	return nil
}

// StartMonitor starts monitoring session id of interactionID by u.
func (s *Supervision) StartMonitor(ctx context.Context, u User, id, interactionID string) (Monitor, error) {
	if err := CanSupervise(u); err != nil {
		return Monitor{}, err
	}
	m := Monitor{ID: id, InteractionID: interactionID, UserID: u.ID, Name: supervisorName(u)}
	if err := s.store.StartMonitor(ctx, m); err != nil {
		return Monitor{}, fmt.Errorf("supervise: monitor: %w", err)
	}
	return m, nil
}

// RenewMonitor renews a monitoring session's heartbeat.
func (s *Supervision) RenewMonitor(ctx context.Context, m Monitor) error {
	return s.store.RenewMonitor(ctx, m.ID)
}

// StopMonitor ends a monitoring session (the page closed).
func (s *Supervision) StopMonitor(ctx context.Context, m Monitor) error {
	return s.store.StopMonitor(ctx, m)
}

// Monitors returns who monitors a chat now.
func (s *Supervision) Monitors(ctx context.Context, interactionID string) ([]Monitor, error) {
	return s.store.Monitors(ctx, interactionID)
}

// MonitoredBy is the agent's line for a chat's monitors: "Monitored by A, B", or "" for none.
// A supervisor with two pages open on one chat is named once.
func MonitoredBy(ms []Monitor) string {
	var names []string
	seen := map[int64]bool{}
	for _, m := range ms {
		if !seen[m.UserID] {
			seen[m.UserID] = true
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "Monitored by " + strings.Join(names, ", ")
}

func (s *Supervision) checkText(text string) error {
	return chat.CheckText(text, s.maxChars)
}

// Whisper sends text to the agents of a chat only; the customer never receives it.
func (s *Supervision) Whisper(ctx context.Context, u User, interactionID, text string) (chat.Notice, error) {
	if err := CanSupervise(u); err != nil {
		return chat.Notice{}, err
	}
	if err := s.checkText(text); err != nil {
		return chat.Notice{}, err
	}
	n, err := s.store.Whisper(ctx, WhisperRequest{InteractionID: interactionID, User: u, Text: text})
	if err != nil {
		return chat.Notice{}, fmt.Errorf("supervise: whisper: %w", err)
	}
	return n, nil
}

// BargeIn joins u to the chat as a party of type supervisor. Only one supervisor may be barged in
// at a time (supervisor_present); barging in again while in is a no-op that answers the party.
func (s *Supervision) BargeIn(ctx context.Context, u User, interactionID string) (chat.Party, error) {
	if err := CanSupervise(u); err != nil {
		return chat.Party{}, err
	}
	p, err := s.store.BargeIn(ctx, u, interactionID)
	if err != nil {
		return chat.Party{}, fmt.Errorf("supervise: barge in: %w", err)
	}
	return p, nil
}

// Send writes a message to the chat as u's supervisor party (after BargeIn).
func (s *Supervision) Send(ctx context.Context, u User, interactionID, commandID, text string) (chat.Event, error) {
	if err := CanSupervise(u); err != nil {
		return chat.Event{}, err
	}
	if err := s.checkText(text); err != nil {
		return chat.Event{}, err
	}
	ev, err := s.store.SupervisorSend(ctx, u, interactionID, commandID, text)
	if err != nil {
		return chat.Event{}, fmt.Errorf("supervise: send: %w", err)
	}
	return ev, nil
}

// Leave makes u's supervisor party leave the chat; the agent keeps it.
func (s *Supervision) Leave(ctx context.Context, u User, interactionID string) error {
	if err := CanSupervise(u); err != nil {
		return err
	}
	if err := s.store.SupervisorLeave(ctx, u, interactionID); err != nil {
		return fmt.Errorf("supervise: leave: %w", err)
	}
	return nil
}

// supervisorName is how a supervisor is shown: the display name, else the username.
func supervisorName(u User) string {
	if strings.TrimSpace(u.DisplayName) != "" {
		return u.DisplayName
	}
	return u.Username
}

// UserRef is how a user is named in a party's user_ref.
func UserRef(u User) string { return strconv.FormatInt(u.ID, 10) }
