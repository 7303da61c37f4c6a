package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
)

// MonitorTTL is how long a monitoring session counts without a heartbeat. The monitor socket
// renews it every few seconds (web/supervisor); a node that crashed leaves rows behind that stop
// counting after this, and the agent's console drops them at its next check.
const MonitorTTL = 30 * time.Second

// MonitorStore is the supervisors' live work on a chat (agent.SuperviseStore): monitoring
// sessions, whispers, barge-in, the supervisor's messages and leave, each one commit with its
// audit row and notifications.
type MonitorStore struct {
	c    *Committer
	chat *ChatStore
}

// NewMonitorStore returns the monitoring store of the node that commits with c.
func NewMonitorStore(c *Committer) *MonitorStore { return &MonitorStore{c: c, chat: NewChatStore(c)} }

// notifyChatAgents tells the agents who have the chat active (their consoles show who monitors).
func notifyChatAgents(ctx context.Context, tx *Tx, interactionID string) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT user_id FROM assignments WHERE interaction_id = $1 AND state = 'active'`, interactionID)
	if err != nil {
		return err
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := tx.notifyAgent(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// StartMonitor records a monitoring session (audit supervisor.monitor_start) and tells the
// chat's agents. Sessions whose heartbeat expired are swept in the same commit.
func (s *MonitorStore) StartMonitor(ctx context.Context, m agent.Monitor) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		if _, err := lockInteraction(ctx, tx, m.InteractionID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM supervisor_monitors WHERE heartbeat_at < now() - make_interval(secs => $1)`,
			MonitorTTL.Seconds()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO supervisor_monitors (id, interaction_id, user_id, node_id) VALUES ($1, $2, $3, $4)`,
			m.ID, m.InteractionID, m.UserID, tx.nodeID); err != nil {
			return err
		}
		if err := audit(ctx, tx, m.UserID, "supervisor.monitor_start", m.InteractionID, map[string]any{"monitor_id": m.ID}); err != nil {
			return err
		}
		return notifyChatAgents(ctx, tx, m.InteractionID)
	})
}

// RenewMonitor renews a session's heartbeat. A session that is gone (swept after a long pause)
// is not_found: the socket starts a new one.
func (s *MonitorStore) RenewMonitor(ctx context.Context, monitorID string) error {
	tag, err := s.c.db.Pool.Exec(ctx, `UPDATE supervisor_monitors SET heartbeat_at = now() WHERE id = $1`, monitorID)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return agentd.Errorf(agentd.ENOTFOUND, "monitor_not_found", "The monitoring session expired.")
	}
	return nil
}

// StopMonitor deletes a session (audit supervisor.monitor_stop) and tells the chat's agents.
// Stopping a session that is already gone changes and audits nothing.
func (s *MonitorStore) StopMonitor(ctx context.Context, m agent.Monitor) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM supervisor_monitors WHERE id = $1`, m.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if err := audit(ctx, tx, m.UserID, "supervisor.monitor_stop", m.InteractionID, map[string]any{"monitor_id": m.ID}); err != nil {
			return err
		}
		return notifyChatAgents(ctx, tx, m.InteractionID)
	})
}

// Monitors returns the live monitoring sessions of a chat, oldest first.
func (s *MonitorStore) Monitors(ctx context.Context, interactionID string) ([]agent.Monitor, error) {
	if !validUUID(interactionID) {
		return nil, errSessionNotFound()
	}
	rows, err := s.c.db.Pool.Query(ctx, `SELECT m.id, m.interaction_id, m.user_id, coalesce(nullif(u.display_name, ''), u.username), m.started_at
		FROM supervisor_monitors m JOIN users u ON u.id = m.user_id
		WHERE m.interaction_id = $1 AND m.heartbeat_at >= now() - make_interval(secs => $2) ORDER BY m.started_at, m.id`,
		interactionID, MonitorTTL.Seconds())
	if err != nil {
		return nil, translate(err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (agent.Monitor, error) {
		var m agent.Monitor
		err := row.Scan(&m.ID, &m.InteractionID, &m.UserID, &m.Name, &m.StartedAt)
		return m, err
	})
	return ms, translate(err)
}

// Whisper stores a whisper as a notice for the agent only (audience agent, no party, sender
// supervisor:<username>), so it never enters the customer's transcript indexes and the
// customer's side channel skips it like every agent-only notice. Integrators see it as such a
// notice (notice.custom, audience agent). Audit supervisor.whisper, in the same commit.
func (s *MonitorStore) Whisper(ctx context.Context, w agent.WhisperRequest) (chat.Notice, error) {
	var n chat.Notice
	err := s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, w.InteractionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			return errEnded()
		}
		from := w.User.DisplayName
		if from == "" {
			from = w.User.Username
		}
		sender := chat.WhisperSenderPrefix + w.User.Username
		payload := chat.WhisperPayload(from, w.Text)
		seq, err := nextSeq(ctx, tx, w.InteractionID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO notices (interaction_id, seq, party_id, sender, audience, payload, created_at)
			VALUES ($1, $2, NULL, $3, 'agent', $4, clock_timestamp())`, w.InteractionID, seq, sender, []byte(payload)); err != nil {
			return err
		}
		if err := tx.emit(notify.NoticeCustom, w.InteractionID, map[string]any{"seq": seq, "audience": chat.AudienceAgent,
			"sender": sender, "payload": payload}); err != nil {
			return err
		}
		if err := audit(ctx, tx, w.User.ID, "supervisor.whisper", w.InteractionID, map[string]any{"seq": seq}); err != nil {
			return err
		}
		if err := tx.notifySide(ctx, w.InteractionID, seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, noticeQuery+` WHERE n.interaction_id = $1 AND n.seq = $2`, w.InteractionID, seq)
		if err != nil {
			return err
		}
		n, err = pgx.CollectExactlyOneRow(rows, scanNotice)
		return err
	})
	return n, err
}

// supervisorParty returns the supervisor party in the chat now (not left), if any, locked.
func supervisorParty(ctx context.Context, tx *Tx, interactionID string) (chat.Party, bool, error) {
	p, err := scanParty(tx.QueryRow(ctx, `SELECT `+partyColumns+` FROM parties p
		WHERE p.interaction_id = $1 AND p.type = 'supervisor' AND p.left_at IS NULL ORDER BY p.joined_at LIMIT 1`, interactionID))
	if noRows(err) {
		return chat.Party{}, false, nil
	}
	return p, err == nil, err
}

func errNotBargedIn() error {
	return agentd.Errorf(agentd.ECONFLICT, "not_barged_in", "Barge in first: you are not in this chat.")
}

// BargeIn joins u as a supervisor party (audit supervisor.barge_in). The interaction row lock
// serializes barge-ins: one supervisor is in a chat at a time, a second one gets
// supervisor_present; the same supervisor again gets its party back and nothing is written.
func (s *MonitorStore) BargeIn(ctx context.Context, u agent.User, interactionID string) (chat.Party, error) {
	var party chat.Party
	err := s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			return errEnded()
		}
		if in.State != chat.StateActive {
			return agentd.Errorf(agentd.ECONFLICT, "chat_not_active", "Barge in once an agent has accepted the chat.")
		}
		p, found, err := supervisorParty(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		if found {
			if p.UserRef == agent.UserRef(u) {
				party = p
				return nil
			}
			return agentd.Errorf(agentd.ECONFLICT, "supervisor_present",
				"%s has already barged in to this chat; one supervisor can be in a chat at a time.", p.Name)
		}
		name := u.DisplayName
		if name == "" {
			name = u.Username
		}
		if party, err = insertParty(ctx, tx, interactionID, chat.PartySupervisor, name, agent.UserRef(u)); err != nil {
			return err
		}
		ev, err := appendEvent(ctx, tx, interactionID, chat.EventPartyJoined, &party, "", "", "")
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, u.ID, "supervisor.barge_in", interactionID, map[string]any{"party_id": party.ID}); err != nil {
			return err
		}
		return tx.notifyEvents(ctx, interactionID, ev)
	})
	return party, err
}

// SupervisorSend appends a message from u's supervisor party (audit supervisor.message). The
// same command id again answers the first message and writes nothing.
func (s *MonitorStore) SupervisorSend(ctx context.Context, u agent.User, interactionID, commandID, text string) (chat.Event, error) {
	var ev chat.Event
	err := s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		p, found, err := supervisorParty(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		if !found || p.UserRef != agent.UserRef(u) {
			if in.State.Over() {
				return errEnded()
			}
			return errNotBargedIn()
		}
		var prev messageResult
		replay, err := commandDone(ctx, tx, p.ID, commandID, &prev)
		if err != nil {
			return err
		}
		if ev, err = s.chat.AppendMessageTx(ctx, tx, chat.MessageRequest{InteractionID: interactionID, PartyID: p.ID,
			CommandID: commandID, Text: text, ContentType: chat.ContentText}); err != nil || replay {
			return err
		}
		return audit(ctx, tx, u.ID, "supervisor.message", interactionID, map[string]any{"index": ev.Index})
	})
	return ev, err
}

// SupervisorLeave makes u's supervisor party leave (audit supervisor.leave); the chat stays
// active with its agent.
func (s *MonitorStore) SupervisorLeave(ctx context.Context, u agent.User, interactionID string) error {
	return s.c.InTx(ctx, func(tx *Tx) error {
		in, err := lockInteraction(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		if in.State.Over() {
			return errEnded() // the end made every party leave the conversation already
		}
		p, found, err := supervisorParty(ctx, tx, interactionID)
		if err != nil {
			return err
		}
		if !found || p.UserRef != agent.UserRef(u) {
			return errNotBargedIn()
		}
		if _, err := s.chat.LeavePartyTx(ctx, tx, chat.LeaveRequest{InteractionID: interactionID, PartyID: p.ID, At: time.Now()}); err != nil {
			return err
		}
		return audit(ctx, tx, u.ID, "supervisor.leave", interactionID, map[string]any{"party_id": p.ID})
	})
}
