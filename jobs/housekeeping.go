package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Housekeeping is the store the pruning jobs delete through.
type Housekeeping interface {
	PruneCommands(ctx context.Context, olderThan time.Duration) (int64, error)
	PruneWebSessions(ctx context.Context) (int64, error)
	PruneEvents(ctx context.Context, olderThan time.Duration) (int64, error)
}

// queueHousekeeping has three workers per node, one per prune kind, so both jobs of a round are
// fetched by one poll; the unique insert options already keep the same prune from running twice
// at once anywhere, and chat traffic keeps the rest of the pool.
const (
	queueHousekeeping      = "housekeeping"
	housekeepingMaxWorkers = 3
)

// pruneTimeout bounds one prune. River's default of a minute could cut off the first run over a
// large backlog; that would lose nothing (batches commit), but the job would count as failed.
const pruneTimeout = 10 * time.Minute

// pruneInsertOpts applies to every prune job. Unique over the states before completion: while one
// waits or runs, the leader's next tick adds no second one. One attempt: a failed prune is
// retried by the next periodic run, not by a backlog of retries.
func pruneInsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       queueHousekeeping,
		MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}},
	}
}

type pruneCommandsArgs struct{}

func (pruneCommandsArgs) Kind() string                 { return "prune_party_commands" }
func (pruneCommandsArgs) InsertOpts() river.InsertOpts { return pruneInsertOpts() }

type pruneWebSessionsArgs struct{}

func (pruneWebSessionsArgs) Kind() string                 { return "prune_web_sessions" }
func (pruneWebSessionsArgs) InsertOpts() river.InsertOpts { return pruneInsertOpts() }

// pruneWorker runs one prune and logs what it removed.
type pruneEventsArgs struct{}

func (pruneEventsArgs) Kind() string                 { return "prune_integration_events" }
func (pruneEventsArgs) InsertOpts() river.InsertOpts { return pruneInsertOpts() }

type pruneWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	table  string
	prune  func(context.Context) (int64, error)
	logger *slog.Logger
}

func (w *pruneWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error {
	n, err := w.prune(ctx)
	if n > 0 { // also when it stopped part way: those rows are gone
		w.logger.Info("pruned rows", "table", w.table, "count", n)
	}
	if err != nil {
		return fmt.Errorf("prune %s: %w", w.table, err)
	}
	return nil
}

func (w *pruneWorker[T]) Timeout(*river.Job[T]) time.Duration { return pruneTimeout }

// addHousekeeping registers the prune workers and returns their periodic jobs.
func addHousekeeping(workers *river.Workers, store Housekeeping, cfg Config, logger *slog.Logger) []*river.PeriodicJob {
	river.AddWorker(workers, &pruneWorker[pruneCommandsArgs]{
		table:  "party_commands",
		prune:  func(ctx context.Context) (int64, error) { return store.PruneCommands(ctx, cfg.CommandRetention) },
		logger: logger,
	})
	river.AddWorker(workers, &pruneWorker[pruneWebSessionsArgs]{
		table:  "web_sessions",
		prune:  store.PruneWebSessions,
		logger: logger,
	})
	river.AddWorker(workers, &pruneWorker[pruneEventsArgs]{
		table:  "integration_events",
		prune:  func(ctx context.Context) (int64, error) { return store.PruneEvents(ctx, cfg.EventRetention) },
		logger: logger,
	})
	every := river.PeriodicInterval(cfg.PruneInterval)
	// RunOnStart: a newly elected leader prunes at once instead of an interval later, so
	// frequent restarts (deploys) cannot keep postponing it.
	opts := &river.PeriodicJobOpts{RunOnStart: true}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return pruneCommandsArgs{}, nil }, opts),
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return pruneWebSessionsArgs{}, nil }, opts),
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return pruneEventsArgs{}, nil }, opts),
	}
}
