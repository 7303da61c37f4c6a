package main

import (
	"context"
	"fmt"

	"agentd/jobs"
	"agentd/postgres"
)

// startJobs builds the node's River runner on its pool and starts it. River gets a context of its
// own: Close stops it explicitly, after the sockets and before the pool, rather than when the
// signal that ends `agentd serve` arrives.
func (m *Main) startJobs(ctx context.Context) error {
	r, err := jobs.New(jobs.Deps{Pool: m.DB.Pool, Store: m.DB, Logger: m.Logger, Config: m.Config.Jobs,
		Webhooks: postgres.NewWebhookStore(m.DB), WebhookConfig: m.Config.Webhooks, Now: m.Now})
	if err != nil {
		return err
	}
	if err := r.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: cannot start: %w", err)
	}
	m.Jobs = r
	return nil
}

// stopJobs stops the runner if it started, waiting for its goroutines while ctx lasts.
func (m *Main) stopJobs(ctx context.Context) {
	if m.Jobs == nil {
		return
	}
	if err := m.Jobs.Stop(ctx); err != nil {
		m.Logger.Warn("jobs did not stop in time", "err", err)
	}
}
