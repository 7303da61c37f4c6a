package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"agentd/chat"
)

// Tx is one unit of work: a transaction and the notifications its commit announces. Every
// user-visible operation runs in exactly one Tx, so a change, its transcript events, its audit
// row and what it announces commit together or not at all; the operation is acknowledged only
// after that commit. Operations that another package must extend in the same commit have exported
// XxxTx variants taking a *Tx (ChatStore.ChangeUserDataTx, AgentStore.AuditTx, …).
type Tx struct {
	pgx.Tx
	nodeID string
	notes  []chat.Notification
	wire   [][]byte         // the NOTIFY form of each of notes, sent together before the commit
	once   map[onceKey]bool // queue and agent notifications already queued
	events []pendingEvent   // integration events, written just before the commit (events.go)
}

type onceKey struct {
	kind chat.NotificationKind
	id   int64
}

// Notify announces n with the commit. It is NOTIFY-ed to the other nodes inside the transaction,
// with every other notification of the transaction in as few NOTIFYs as fit Postgres's payload
// limit (flushNotes, just before the commit; Postgres delivers them at commit, and never when the
// transaction rolls back) and handed to this node's broadcaster after the commit, with the events
// it carries (other nodes read them back). A queue or agent notification is sent once per
// transaction however often it is asked for.
func (tx *Tx) Notify(ctx context.Context, n chat.Notification) error {
	if n.Kind == chat.NotifyQueue || n.Kind == chat.NotifyAgent {
		key := onceKey{n.Kind, n.ServiceID + n.UserID} // one of the two is set
		if tx.once[key] {
			return nil
		}
		if tx.once == nil {
			tx.once = map[onceKey]bool{}
		}
		tx.once[key] = true
	}
	b, err := json.Marshal(wireOf(n, tx.nodeID))
	if err != nil {
		return err
	}
	tx.notes = append(tx.notes, n)
	tx.wire = append(tx.wire, b)
	return nil
}

// flushNotes sends the queued notifications: one NOTIFY per payload of wirePayloads, all in one
// statement.
func (tx *Tx) flushNotes(ctx context.Context) error {
	if len(tx.wire) == 0 {
		return nil
	}
	payloads := wirePayloads(tx.wire, maxPayload)
	tx.wire = nil
	if len(payloads) == 1 {
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, payloads[0])
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, ord) ORDER BY ord`,
		NotifyChannel, payloads)
	return err
}

// mark and rewind undo what a command that failed inside a batch queued (its savepoint was
// rolled back): its notifications and integration events.
type txMark struct{ notes, wire, events int }

func (tx *Tx) mark() txMark { return txMark{len(tx.notes), len(tx.wire), len(tx.events)} }

func (tx *Tx) rewind(m txMark) {
	tx.notes, tx.wire, tx.events = tx.notes[:m.notes], tx.wire[:m.wire], tx.events[:m.events]
	tx.once = nil
	for _, n := range tx.notes {
		if n.Kind == chat.NotifyQueue || n.Kind == chat.NotifyAgent {
			if tx.once == nil {
				tx.once = map[onceKey]bool{}
			}
			tx.once[onceKey{n.Kind, n.ServiceID + n.UserID}] = true
		}
	}
}

// notifyEvents announces committed transcript events of one interaction.
func (tx *Tx) notifyEvents(ctx context.Context, interactionID string, events ...chat.Event) error {
	if len(events) == 0 {
		return nil
	}
	return tx.Notify(ctx, chat.Notification{Kind: chat.NotifyEvents, InteractionID: interactionID,
		Index: events[len(events)-1].Index, Events: events})
}

// notifySide announces committed side-channel items (notices, UserData changes) up to seq; seq 0
// means nothing was written and announces nothing.
func (tx *Tx) notifySide(ctx context.Context, interactionID string, seq int64) error {
	if seq == 0 {
		return nil
	}
	return tx.Notify(ctx, chat.Notification{Kind: chat.NotifySide, InteractionID: interactionID, Seq: seq})
}

func (tx *Tx) notifyQueue(ctx context.Context, serviceID int64) error {
	return tx.Notify(ctx, chat.Notification{Kind: chat.NotifyQueue, ServiceID: serviceID})
}

func (tx *Tx) notifyAgent(ctx context.Context, userID int64) error {
	return tx.Notify(ctx, chat.Notification{Kind: chat.NotifyAgent, UserID: userID})
}

// Broadcaster gets the notifications this node commits (and, through the Listener, those of the
// other nodes). Broadcast must not block: it runs right after a commit, and on the LISTEN loop.
type Broadcaster interface {
	Broadcast(chat.Notification)
}

// Committer runs the units of work of one node. It stamps every NOTIFY with the node's id, so
// the node's own listener skips what was already delivered here, and hands every committed
// notification to the node's broadcaster (the fan-out wired in cmd/agentd).
type Committer struct {
	db     *DB
	nodeID string
	local  Broadcaster
	jobs   *river.Client[pgx.Tx] // insert-only: the webhook dispatch jobs of each commit
	batch  *batcher              // group commit of the message path (batch.go)
}

// NewCommitter returns the committer of node nodeID, with group commit as BatchOptions{}
// (the defaults). local gets this node's notifications after each commit; it must not block. It
// may be nil (a CLI that announces to nobody locally).
func NewCommitter(db *DB, nodeID string, local Broadcaster) *Committer {
	return NewCommitterWithOptions(db, nodeID, local, BatchOptions{})
}

// NewCommitterWithOptions is NewCommitter with the group commit of the message path tuned by
// batch (batch.go).
func NewCommitterWithOptions(db *DB, nodeID string, local Broadcaster, batch BatchOptions) *Committer {
	// An insert-only River client (no queues, no workers) cannot fail to build on a valid pool.
	jobs, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	if err != nil {
		panic(fmt.Sprintf("postgres: River insert client: %v", err))
	}
	c := &Committer{db: db, nodeID: nodeID, local: local, jobs: jobs}
	c.batch = newBatcher(c, batch)
	return c
}

// InTx runs fn in one transaction and commits when it returns nil; then, and only then, the
// notifications fn queued are delivered locally, in order. Errors go through translate.
func (c *Committer) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	var tx *Tx
	err := c.db.inTx(ctx, func(ptx pgx.Tx) error {
		tx = &Tx{Tx: ptx, nodeID: c.nodeID}
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.flushNotes(ctx); err != nil {
			return err
		}
		return tx.flushEvents(ctx, c.jobs)
	})
	if err == nil && c.local != nil {
		for _, n := range tx.notes {
			c.local.Broadcast(n)
		}
	}
	return err
}

// Announce delivers an ephemeral notification (typing) that belongs to no transaction: to this
// node at once and to the others by NOTIFY. Nothing is persisted.
func (c *Committer) Announce(ctx context.Context, n chat.Notification) error {
	if c.local != nil {
		c.local.Broadcast(n)
	}
	b, err := json.Marshal(wireOf(n, c.nodeID))
	if err != nil {
		return err
	}
	_, err = c.db.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, string(b))
	return translate(err)
}
