package jobs

import (
	"context"
	"log/slog"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// errorHandler logs a failed or panicked job once, at Error: River itself reports job errors
// only at Info, which demoteInfo turns into Debug. A job interrupted by the node's shutdown does
// not get here (River puts it back without counting the attempt).
type errorHandler struct{ logger *slog.Logger }

func (h *errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.logger.ErrorContext(ctx, "job failed", "job_kind", job.Kind, "job_id", job.ID, "attempt", job.Attempt, "err", err)
	return nil
}

func (h *errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	h.logger.ErrorContext(ctx, "job panicked", "job_kind", job.Kind, "job_id", job.ID, "attempt", job.Attempt, "panic", panicVal, "trace", trace)
	return nil
}

// demoteInfo wraps the node's log handler for River, passing River's Info records on at Debug.
// River logs at Info on every start and stop, every change of its job counters and every
// cleaner run, several lines an hour per node that say nothing an operator acts on; agentd logs
// what the jobs did itself. Warnings and errors keep their level.
type demoteInfo struct{ h slog.Handler }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

func (d demoteInfo) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoteInfo) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteInfo{d.h.WithAttrs(attrs)}
}
func (d demoteInfo) WithGroup(name string) slog.Handler { return demoteInfo{d.h.WithGroup(name)} }
