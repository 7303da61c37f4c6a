package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"agentd"
	"agentd/agent"
	"agentd/chat"
	"agentd/notify"
	"agentd/userdata"
)

// Integration events. A change emits its events on its Tx (emit); they are written just before
// the commit, in one statement, with one River job that fans them out to the webhook endpoints,
// so an event exists exactly when its change does.

type pendingEvent struct {
	typ           notify.Type
	interactionID string
	data          []byte
}

// emit queues an integration event of interactionID for this transaction's commit.
func (tx *Tx) emit(typ notify.Type, interactionID string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	tx.events = append(tx.events, pendingEvent{typ, interactionID, b})
	return nil
}

// flushEvents writes the queued events (each one's data gets interaction_id and service) and,
// when any webhook endpoint is enabled, the River job that dispatches them.
func (tx *Tx) flushEvents(ctx context.Context, jobs *river.Client[pgx.Tx]) error {
	if len(tx.events) == 0 {
		return nil
	}
	types := make([]string, len(tx.events))
	ids := make([]string, len(tx.events))
	data := make([]string, len(tx.events))
	for i, e := range tx.events {
		types[i], ids[i], data[i] = string(e.typ), e.interactionID, string(e.data)
	}
	var xid uint64
	var webhooks bool
	err := tx.QueryRow(ctx, `WITH e AS (
			INSERT INTO integration_events (type, interaction_id, service_id, data)
			SELECT e.type, i.id, i.service_id,
				jsonb_build_object('interaction_id', i.id, 'service', s.name) || e.data::jsonb
			FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS e(type, iid, data, ord)
			JOIN interactions i ON i.id = e.iid JOIN services s ON s.id = i.service_id
			ORDER BY e.ord
			RETURNING 1)
		SELECT pg_current_xact_id()::text::bigint, EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND paused_reason = ''),
			(SELECT count(*) FROM e)`, types, ids, data).Scan(&xid, &webhooks, new(int64))
	if err != nil {
		return err
	}
	tx.events = nil
	if !webhooks || jobs == nil {
		return nil
	}
	_, err = jobs.InsertTx(ctx, tx.Tx, notify.DispatchArgs{Tx: xid}, &river.InsertOpts{Queue: notify.Queue, MaxAttempts: 25})
	return err
}

// eventColumns reads an integration event; the position is (tx_id, id).
const eventColumns = `e.event_id, e.tx_id::text::bigint, e.id, e.type, coalesce(e.interaction_id::text, ''),
	coalesce(s.name, ''), e.created_at, e.data`

const eventFrom = ` FROM integration_events e LEFT JOIN services s ON s.id = e.service_id`

func scanEvent(row pgx.CollectableRow) (notify.Event, error) {
	var e notify.Event
	var tx int64
	err := row.Scan(&e.ID, &tx, &e.Position.N, &e.Type, &e.InteractionID, &e.Service, &e.CreatedAt, &e.Data)
	e.Position.Tx = uint64(tx)
	return e, err
}

// EventStore reads the integration events.
type EventStore struct {
	db *DB
}

// NewEventStore returns the event store of db.
func NewEventStore(db *DB) *EventStore { return &EventStore{db: db} }

// horizonQuery returns the oldest transaction id still running in the cluster (or the next one
// to be assigned): every transaction below it has finished. Reading only events of transactions
// below it, in a statement after this one, a reader that resumes from its last position never
// skips an event of a transaction that commits later. A write transaction left open anywhere in
// the cluster holds readers back (never loses events) until it ends; docs/events.md says so.
// (Narrowing this to this database's sessions through pg_stat_activity or pg_locks skipped
// events under concurrent commits in TestEventsConcurrentCommitters, so the snapshot's own xmin
// is used.)
const horizonQuery = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

// Events returns up to limit events after position after that f selects, in position order.
// Only events of transactions older than every transaction still running are returned, so a
// caller that resumes from the last position it got misses nothing and gets
// nothing twice. The horizon is read first, in its own statement: every transaction below it
// has finished before the events are read, so all of its events are visible to the read.
func (s *EventStore) Events(ctx context.Context, after notify.Position, f notify.Filter, limit int) ([]notify.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var horizon int64
	if err := s.db.Pool.QueryRow(ctx, horizonQuery).Scan(&horizon); err != nil {
		return nil, translate(err)
	}
	args := []any{fmt.Sprint(after.Tx), after.N, limit, fmt.Sprint(horizon)}
	where := `(e.tx_id, e.id) > ($1::xid8, $2) AND e.tx_id < $4::xid8`
	if len(f.Types) > 0 {
		types := make([]string, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		args = append(args, types)
		where += fmt.Sprintf(` AND e.type = ANY($%d)`, len(args))
	}
	if len(f.Services) > 0 {
		args = append(args, f.Services)
		where += fmt.Sprintf(` AND s.name = ANY($%d)`, len(args))
	}
	if f.InteractionID != "" {
		if !validUUID(f.InteractionID) {
			return nil, agentd.Errorf(agentd.EINVALID, "invalid_argument", "interaction must be an interaction id.")
		}
		args = append(args, f.InteractionID)
		where += fmt.Sprintf(` AND e.interaction_id = $%d`, len(args))
	}
	if f.AgentID != 0 {
		args = append(args, f.AgentID)
		where += fmt.Sprintf(` AND e.interaction_id IN (SELECT interaction_id FROM assignments WHERE user_id = $%d)`, len(args))
	}
	if f.Agent != "" {
		args = append(args, f.Agent)
		where += fmt.Sprintf(` AND e.interaction_id IN (SELECT a.interaction_id FROM assignments a JOIN users u ON u.id = a.user_id
			WHERE lower(u.username) = lower($%d))`, len(args))
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+eventColumns+eventFrom+` WHERE `+where+
		` ORDER BY e.tx_id, e.id LIMIT $3`, args...)
	if err != nil {
		return nil, translate(err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	return evs, translate(err)
}

// Head returns the position of the last event a reader can see now. Reading from it gets the
// events committed from now on, and also those of transactions that committed a moment before
// while an older one was still running (they were not readable yet): "now" may start a little
// early, never late, so a stream started from it misses nothing committed after it started.
func (s *EventStore) Head(ctx context.Context) (notify.Position, error) {
	var horizon int64
	if err := s.db.Pool.QueryRow(ctx, horizonQuery).Scan(&horizon); err != nil {
		return notify.Position{}, translate(err)
	}
	var tx, n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT tx_id::text::bigint, id FROM integration_events WHERE tx_id < $1::xid8
		ORDER BY tx_id DESC, id DESC LIMIT 1`, fmt.Sprint(horizon)).Scan(&tx, &n)
	if noRows(err) {
		return notify.Position{}, nil
	}
	if err != nil {
		return notify.Position{}, translate(err)
	}
	return notify.Position{Tx: uint64(tx), N: n}, nil
}

// Pruned returns the newest position pruned (zero when none was): events at or before it are gone.
func (s *EventStore) Pruned(ctx context.Context) (notify.Position, error) {
	var tx, n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT tx_id::text::bigint, id FROM integration_events_pruned`).Scan(&tx, &n)
	if noRows(err) {
		return notify.Position{}, nil
	}
	if err != nil {
		return notify.Position{}, translate(err)
	}
	return notify.Position{Tx: uint64(tx), N: n}, nil
}

// TxEvents returns the events one transaction wrote, in order (the webhook dispatch job's read).
func (s *EventStore) TxEvents(ctx context.Context, tx uint64) ([]notify.Event, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+eventColumns+eventFrom+` WHERE e.tx_id = $1::xid8 ORDER BY e.id`, fmt.Sprint(tx))
	if err != nil {
		return nil, translate(err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	return evs, translate(err)
}

// The data of the events changes emit (docs/webhooks.md).

type eventParty struct {
	ID   string         `json:"id"`
	Type chat.PartyType `json:"type"`
	Name string         `json:"name"`
}

func partyOf(p *chat.Party) *eventParty {
	if p == nil {
		return nil
	}
	return &eventParty{ID: p.ID, Type: p.Type, Name: p.Name}
}

type messageData struct {
	Index       int         `json:"index"`
	Party       *eventParty `json:"party"`
	Text        string      `json:"text"`
	ContentType string      `json:"content_type"`
	At          time.Time   `json:"created_at"`
}

// eventAgent names an agent for an event.
func eventAgent(ctx context.Context, tx *Tx, userID int64) (notify.Agent, error) {
	a := notify.Agent{ID: userID}
	err := tx.QueryRow(ctx, `SELECT username, display_name FROM users WHERE id = $1`, userID).Scan(&a.Username, &a.Name)
	return a, translate(err, errUserNotFound())
}

// activeAgent names the agent working the interaction now, if any.
func activeAgent(ctx context.Context, tx *Tx, interactionID string) (*notify.Agent, error) {
	var a notify.Agent
	err := tx.QueryRow(ctx, `SELECT u.id, u.username, u.display_name FROM assignments a JOIN users u ON u.id = a.user_id
		WHERE a.interaction_id = $1 AND a.state = 'active' ORDER BY a.accepted_at DESC LIMIT 1`, interactionID).
		Scan(&a.ID, &a.Username, &a.Name)
	if noRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// emitUserData emits the event of one UserData write; a CoBrowseSessionId that appears or
// changes also emits cobrowse.requested.
func emitUserData(ctx context.Context, tx *Tx, interactionID string, w userdata.Write, old json.RawMessage, actorName string) error {
	if w.Op == userdata.OpDelete {
		return tx.emit(notify.UserDataDeleted, interactionID, map[string]any{"key": w.Key, "old_value": old,
			"owner": w.Owner, "by": actorName})
	}
	if err := tx.emit(notify.UserDataUpdated, interactionID, map[string]any{"key": w.Key, "value": w.Value,
		"old_value": old, "owner": w.Owner, "visible": w.Visible, "by": actorName}); err != nil {
		return err
	}
	if w.Key != userdata.KeyCoBrowseSessionID || string(old) == string(w.Value) {
		return nil
	}
	var session string
	if err := json.Unmarshal(w.Value, &session); err != nil || session == "" {
		return nil // not a session id a provider could join
	}
	who, err := activeAgent(ctx, tx, interactionID)
	if err != nil {
		return err
	}
	return tx.emit(notify.CoBrowseRequested, interactionID, map[string]any{"session_id": session, "agent": who})
}

// emitCoBrowseJoined emits cobrowse.joined with the session id the chat's UserData holds.
func emitCoBrowseJoined(ctx context.Context, tx *Tx, interactionID string, userID int64, entries []userdata.Entry) error {
	var session string
	for _, e := range entries {
		if e.Key == userdata.KeyCoBrowseSessionID {
			_ = json.Unmarshal(e.Value, &session)
		}
	}
	who, err := eventAgent(ctx, tx, userID)
	if err != nil {
		return err
	}
	return tx.emit(notify.CoBrowseJoined, interactionID, map[string]any{"session_id": session, "agent": who})
}

// emitTransfer emits interaction.transferred: from the agent, to a service and maybe an agent.
func emitTransfer(ctx context.Context, tx *Tx, req agent.TransferRequest, serviceID, target int64) error {
	from, err := eventAgent(ctx, tx, req.UserID)
	if err != nil {
		return err
	}
	data := map[string]any{"from_agent": from, "to_agent": nil}
	var service string
	if err := tx.QueryRow(ctx, `SELECT name FROM services WHERE id = $1`, serviceID).Scan(&service); err != nil {
		return err
	}
	data["to_service"] = service
	if target != 0 {
		to, err := eventAgent(ctx, tx, target)
		if err != nil {
			return err
		}
		data["to_agent"] = to
	}
	return tx.emit(notify.InteractionTransferred, req.InteractionID, data)
}
