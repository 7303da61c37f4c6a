package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"agentd/postgres/localpg"
	"agentd/web/devtools"
)

// runDev is the embedded default: with no DATABASE_URL it uses a Postgres on 127.0.0.1:5432 when
// one answers, otherwise starts a private cluster in .agentd/pgdata; then it migrates, seeds demo
// services and prints the URLs.
func runDev(ctx context.Context, args []string) error {
	m := NewMain()
	fs := flag.NewFlagSet("agentd dev", flag.ContinueOnError)
	m.Config.bindFlags(fs)
	dataDir := fs.String("data-dir", env("AGENTD_DEV_DATA_DIR", ".agentd/pgdata"), "private Postgres cluster folder (AGENTD_DEV_DATA_DIR)")
	pgPort := fs.Int("pg-port", 54320, "port of the private Postgres cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var pgOpts localpg.Options
	var started bool
	if m.Config.DatabaseURL == "" {
		abs, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		pgOpts = localpg.Options{DataDir: abs, Port: *pgPort, TryDefault: true, Logger: m.Logger}
		fmt.Fprintln(os.Stderr, "agentd dev: looking for Postgres on 127.0.0.1:5432, else starting a private cluster in", abs)
		srv, err := localpg.Ensure(ctx, pgOpts)
		if err != nil {
			return err
		}
		started = srv.Started
		if err := localpg.CreateDatabase(ctx, srv.AdminURL, "agentd", ""); err != nil {
			return err
		}
		m.Config.DatabaseURL = srv.DatabaseURL("agentd")
	}
	if started {
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := localpg.Stop(stopCtx, pgOpts); err != nil {
				m.Logger.Warn("stopping the private Postgres cluster", "err", err)
			}
		}()
	}
	if err := m.Config.load(); err != nil {
		return err
	}
	m.Config.Dev = true
	m.Logger = m.Config.newLogger(os.Stderr)
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	defer m.Close()
	if err := seedDemo(ctx, m); err != nil {
		return err
	}
	creds, err := seedDemoUsers(ctx, m)
	if err != nil {
		return err
	}
	u := m.URL()
	fmt.Printf(`
agentd is running (dev mode, node %s)

  Agent console:        %s/console   (sign in below)
  Supervisor:           %s/supervisor
  Admin:                %s/admin
  Demo customer page:   %s/demo
  Customer library:     %s/static/chat-service.js
  Integrator API:       %s/api/v1/openapi.json   (tokens: go run ./cmd/agentd token create --name NAME --database-url DATABASE, see docs/api.md)
  Health / readiness:   %s/healthz  %s/readyz
  Database:             %s

Demo sign-ins (dev only):
%s
Services: default, support, sales (with dispositions and an after-chat survey), a few canned
responses, and a demo co-browse provider (%s). Press Ctrl+C to stop.
`, m.Config.NodeID, u, u, u, u, u, u, u, u, redactURL(m.Config.DatabaseURL), creds, coBrowseNote(m.Config.Agent.CoBrowseURL))
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return nil
}

// coBrowseNote says which co-browse provider the console opens.
func coBrowseNote(url string) string {
	if strings.Contains(url, devtools.CoBrowsePath) {
		return "the console opens it when a customer shares a CoBrowseSessionId"
	}
	return "AGENTD_COBROWSE_URL is used instead"
}
