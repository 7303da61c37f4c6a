// Package jobs is agentd's background and periodic work, on River: jobs are rows in Postgres, so
// one can be inserted in the transaction of the change that causes it (InsertTx), survives a
// restart and is worked once however many nodes run. The River client is built once per node, on
// the node's pgx pool, by New; periodic jobs are enqueued only by the leader River elects among
// the nodes, and any node may work them.
//
// Today the work is housekeeping (housekeeping.go): pruning the command results and browser
// sessions that outlived their use. The signed webhooks' dispatch and deliver workers (notify/)
// run on the webhooks queue, polled every 200 ms so a delivery goes out at once.
package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"agentd/notify"
)

// Config is the tunable part of the background jobs (docs/configuration.md).
type Config struct {
	CommandRetention time.Duration // how long a client command's result is kept, so its id is honoured
	EventRetention   time.Duration // how long integration events (and their webhook deliveries) are kept
	PruneInterval    time.Duration // how often the housekeeping jobs run
}

// DefaultConfig is used where a field is zero.
var DefaultConfig = Config{
	// The customer library retries a command only within a live session, so a day is generous.
	CommandRetention: 24 * time.Hour,
	// A month of events: an integrator down for weeks still catches up from its last position.
	EventRetention: 30 * 24 * time.Hour,
	PruneInterval:  time.Hour,
}

// fetchPollInterval is how often a node looks for available jobs. The client is poll-only (see
// New), so this is also the delay before a job is picked up; housekeeping does not mind, and a
// poll per node every two seconds costs the database nothing worth measuring.
const fetchPollInterval = 2 * time.Second

// The webhooks queue is polled far more often: a delivery should reach its receiver within a
// fraction of a second of the change, and the poll is one indexed query.
const (
	webhooksPollInterval = 200 * time.Millisecond
	webhooksMaxWorkers   = 10 // a slow receiver holds one worker for up to its timeout
)

// Deps is what New needs.
type Deps struct {
	Pool   *pgxpool.Pool // the node's pool; River's tables are migrated by postgres.Migrate
	Store  Housekeeping
	Logger *slog.Logger
	Config Config
	// Webhooks, when set, is worked by the dispatch and deliver workers (docs/webhooks.md).
	Webhooks      notify.WebhookStore
	WebhookConfig notify.WebhookConfig
	Now           func() time.Time // the deliver worker's clock; time.Now when nil
}

// Runner is a node's River client with agentd's workers and periodic jobs.
type Runner struct {
	client *river.Client[pgx.Tx]
}

// New builds the node's River client. It does not touch the database until Start.
func New(deps Deps) (*Runner, error) {
	if deps.Pool == nil || deps.Store == nil || deps.Logger == nil {
		return nil, errors.New("jobs: Pool, Store and Logger are required")
	}
	cfg := deps.Config
	if cfg.CommandRetention <= 0 {
		cfg.CommandRetention = DefaultConfig.CommandRetention
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = DefaultConfig.PruneInterval
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = DefaultConfig.EventRetention
	}
	logger := deps.Logger.With("component", "jobs")
	workers := river.NewWorkers()
	periodic := addHousekeeping(workers, deps.Store, cfg, logger)
	queues := map[string]river.QueueConfig{queueHousekeeping: {MaxWorkers: housekeepingMaxWorkers}}
	if deps.Webhooks != nil {
		river.AddWorker(workers, &notify.DispatchWorker{Store: deps.Webhooks})
		river.AddWorker(workers, notify.NewDeliverWorker(notify.DeliverDeps{Store: deps.Webhooks, Config: deps.WebhookConfig,
			Now: deps.Now, Logger: logger}))
		queues[notify.Queue] = river.QueueConfig{MaxWorkers: webhooksMaxWorkers, FetchPollInterval: webhooksPollInterval}
	}
	client, err := river.NewClient(riverpgxv5.New(deps.Pool), &river.Config{
		Queues:       queues,
		Workers:      workers,
		PeriodicJobs: periodic,
		// Poll-only: without it River holds one more connection per node for LISTEN, to learn
		// of new jobs and leader changes at once; housekeeping can wait for the next poll, and
		// a new leader is elected within seconds of the old one stopping either way.
		PollOnly:          true,
		FetchPollInterval: fetchPollInterval,
		ErrorHandler:      &errorHandler{logger: logger},
		Logger:            slog.New(demoteInfo{deps.Logger.Handler()}).With("component", "river"),
		// The completed/cancelled/discarded job retention is left at River's defaults (1, 1
		// and 7 days), so River's job cleaner keeps river_job small.
	})
	if err != nil {
		return nil, err
	}
	return &Runner{client: client}, nil
}

// Start starts working jobs and, on the elected leader, enqueueing the periodic ones. Cancelling
// ctx stops the client without waiting; use Stop to stop and wait.
func (r *Runner) Start(ctx context.Context) error { return r.client.Start(ctx) }

// Stop cancels the running jobs and waits, at most until ctx ends, for every River goroutine to
// finish. Nothing is lost: a prune commits each batch, and River puts an interrupted job back to
// run again. Call it before closing the pool.
func (r *Runner) Stop(ctx context.Context) error { return r.client.StopAndCancel(ctx) }
