package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"agentd/chat"
)

// Group commit. The customer and agent commands of the message path (messages, UserData changes,
// notices) of many interactions are collected while the previous batch is being written and
// written together in one transaction: one commit, so one WAL flush, one NOTIFY and one
// integration-event insert for the whole batch instead of one of each per command. Every caller
// is answered only after that commit, as with InTx, and sees exactly what InTx would have given
// it:
//   - commands of one interaction run in arrival order (the batch is sorted by interaction, stably),
//     and each takes the interaction's row lock as before, held to the batch's commit;
//   - interactions are locked in id order, so two nodes' batches never deadlock each other;
//   - a command that fails fails alone: the batch is run again with a savepoint around each
//     command, and a failing command's savepoint, notifications and events are rolled back;
//   - when the server refuses the batch's commit, nothing was written, and each command is run
//     again in its own transaction, so nobody gets an error for another's fault; when the
//     connection fails during the commit the outcome is unknown, and every caller gets the error
//     (unavailable), as with InTx: running again could apply twice a command without an id;
//   - a caller whose ctx ends while its command is still queued gets its ctx's error and the
//     command never runs; once taken into a batch, the caller waits for the batch's outcome.

// BatchOptions tune group commit.
type BatchOptions struct {
	// Max is the most commands in one batch (DefaultBatchMax when 0).
	Max int
	// Window is how long a batch waits for more commands before it is written; 0 (the default)
	// writes at once: commands that arrive while a batch is written form the next one.
	Window time.Duration
	// Lanes is how many batches may be written at once, each in its own transaction on its own
	// connection (DefaultBatchLanes when 0). An interaction always goes to the same lane, whose
	// batches are written one after another, so its commands stay in arrival order and two
	// lanes' batches never wait for each other's interaction locks.
	Lanes int
	// Off runs every command in its own transaction (InTx), as before group commit: for the
	// before/after benchmark.
	Off bool
}

// DefaultBatchMax and DefaultBatchLanes are the defaults of BatchOptions.
const (
	DefaultBatchMax   = 128
	DefaultBatchLanes = 4
)

// batchTimeout bounds one batch's transaction: it runs under no caller's context, since one
// caller leaving must not abort the others' commands.
const batchTimeout = 30 * time.Second

func (o BatchOptions) withDefaults() BatchOptions {
	if o.Max <= 0 {
		o.Max = DefaultBatchMax
	}
	if o.Lanes <= 0 {
		o.Lanes = DefaultBatchLanes
	}
	return o
}

// batcher queues the commands of one Committer in its lanes.
type batcher struct {
	c     *Committer
	opts  BatchOptions
	lanes []*lane
}

func newBatcher(c *Committer, o BatchOptions) *batcher {
	b := &batcher{c: c, opts: o.withDefaults()}
	for range b.opts.Lanes {
		b.lanes = append(b.lanes, &lane{b: b})
	}
	return b
}

// laneOf is the lane of an interaction.
func (b *batcher) laneOf(key string) *lane {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return b.lanes[h.Sum32()%uint32(len(b.lanes))]
}

// lane is a queue of commands; one goroutine at a time writes its batches, started when a
// command arrives and ending when the queue is empty.
type lane struct {
	b       *batcher
	mu      sync.Mutex
	pending []*batchCmd
	running bool
}

type batchCmd struct {
	ctx   context.Context
	key   string // the interaction: the batch's lock order
	fn    func(ctx context.Context, tx *Tx) error
	taken bool // in a batch (guarded by batcher.mu)
	err   error
	notes []chat.Notification // what to deliver locally once committed
	done  chan struct{}
}

// InBatch runs fn as one command of the next batch of c, for the interaction key: fn's changes
// commit with the batch, and InBatch returns after that commit (or with fn's error, or the
// batch's). fn must do all its work on tx with the ctx it is given, and be safe to run more
// than once (a failed batch is run again); its results must be kept only from its last run.
// Errors go through translate.
func (c *Committer) InBatch(ctx context.Context, key string, fn func(ctx context.Context, tx *Tx) error) error {
	if c.batch.opts.Off {
		return c.InTx(ctx, func(tx *Tx) error { return fn(ctx, tx) })
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b := c.batch.laneOf(key)
	cmd := &batchCmd{ctx: ctx, key: key, fn: fn, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, cmd)
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-cmd.done:
		return cmd.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !cmd.taken {
		if i := slices.Index(b.pending, cmd); i >= 0 {
			b.pending = slices.Delete(b.pending, i, i+1)
		}
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	<-cmd.done // bounded by batchTimeout
	return cmd.err
}

func (b *lane) loop() {
	opts := b.b.opts
	for {
		if opts.Window > 0 {
			b.mu.Lock()
			short := len(b.pending) < opts.Max
			b.mu.Unlock()
			if short {
				time.Sleep(opts.Window) // the configured window: let more commands arrive
			}
		}
		b.mu.Lock()
		n := min(len(b.pending), opts.Max)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := slices.Clone(b.pending[:n])
		b.pending = slices.Delete(b.pending, 0, n)
		for _, cmd := range batch {
			cmd.taken = true
		}
		b.mu.Unlock()
		b.b.c.flush(batch)
	}
}

// errCommandFailed stops a batch run without savepoints at its first failing command.
var errCommandFailed = errors.New("a command of the batch failed")

// commitUnknown marks a commit whose outcome is not known: the connection failed during COMMIT,
// so the batch may have committed. Running its commands again could apply twice those that carry
// no command id (an integration's UserData change or notice), so each caller gets the error
// instead, as InTx's caller would, and retries with its own id if it has one.
type commitUnknown struct{ err error }

func (e commitUnknown) Error() string { return "postgres: batch commit: " + e.err.Error() }
func (e commitUnknown) Unwrap() error { return e.err }

// flush writes one batch and answers its callers.
func (c *Committer) flush(batch []*batchCmd) {
	slices.SortStableFunc(batch, func(a, b *batchCmd) int { return cmp.Compare(a.key, b.key) })
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	// First without savepoints: most batches have no failing command, and a savepoint costs two
	// statements per command. A batch of one is just that command.
	err := c.runBatch(ctx, batch, false)
	if errors.Is(err, errCommandFailed) {
		if len(batch) == 1 {
			err = nil // its error is its own
		} else {
			err = c.runBatch(ctx, batch, true)
		}
	}
	if _, unknown := errors.AsType[commitUnknown](err); unknown {
		for _, cmd := range batch {
			cmd.err = translate(err)
		}
	} else if err != nil {
		// The batch did not commit (a statement or the commit failed: a deadlock with another
		// kind of transaction, a deferred check): each command on its own, so each gets its own
		// outcome. InTx delivers their notifications itself.
		for _, cmd := range batch {
			cmd.err = c.InTx(ctx, func(tx *Tx) error { return call(ctx, tx, cmd) })
		}
	} else if c.local != nil {
		for _, cmd := range batch {
			for _, n := range cmd.notes {
				c.local.Broadcast(n)
			}
		}
	}
	for _, cmd := range batch {
		close(cmd.done)
	}
}

// runBatch runs the batch's commands in one transaction and commits. Without savepoints it stops
// at the first failing command (that command's err is set; errCommandFailed); with them each
// failing command is rolled back alone. It returns nil once committed.
func (c *Committer) runBatch(ctx context.Context, batch []*batchCmd, savepoints bool) error {
	ptx, err := c.db.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = ptx.Rollback(ctx) }() // no-op after commit
	tx := &Tx{Tx: ptx, nodeID: c.nodeID}
	ok := false // any command to commit
	for _, cmd := range batch {
		cmd.err, cmd.notes = nil, nil
		m := tx.mark()
		if !savepoints {
			if err := call(ctx, tx, cmd); err != nil {
				cmd.err = translate(err)
				return errCommandFailed
			}
		} else {
			sp, err := ptx.Begin(ctx) // SAVEPOINT
			if err != nil {
				return err
			}
			tx.Tx = sp
			err = call(ctx, tx, cmd)
			if err == nil {
				err = sp.Commit(ctx) // RELEASE SAVEPOINT
				if err != nil {
					return err
				}
			} else {
				if rbErr := sp.Rollback(ctx); rbErr != nil { // ROLLBACK TO SAVEPOINT
					return rbErr
				}
				tx.rewind(m)
				cmd.err = translate(err)
			}
			tx.Tx = ptx
		}
		if cmd.err == nil {
			cmd.notes = tx.notes[m.notes:len(tx.notes):len(tx.notes)]
			ok = true
		}
	}
	if !ok {
		return nil // every command failed alone; nothing to commit
	}
	if err := tx.flushNotes(ctx); err != nil {
		return err
	}
	if err := tx.flushEvents(ctx, c.jobs); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		if _, refused := errors.AsType[*pgconn.PgError](err); refused {
			return err // the server refused the commit: nothing was written
		}
		return commitUnknown{err}
	}
	return nil
}

// call runs a command. A command that panics fails alone, as an internal error, instead of
// taking down the lane's goroutine and the node with it.
func call(ctx context.Context, tx *Tx, cmd *batchCmd) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("postgres: a batched command panicked: %v", p)
		}
	}()
	return cmd.fn(ctx, tx)
}
