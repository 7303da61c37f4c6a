// Command agentd is the agent side of a web chat system: see README.md.
//
//	agentd [serve] [flags]   run the server (default)
//	agentd migrate [flags]   apply database migrations and exit
//	agentd dev [flags]       run with a local Postgres it finds or starts, seeded for a demo
//	agentd user add|list     manage agents, supervisors and admins
//	agentd webhook add|list  manage webhook endpoints (docs/webhooks.md)
//	agentd token create|list|revoke  manage API tokens (docs/api.md)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "agentd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args)
	case "migrate":
		return runMigrate(ctx, args)
	case "dev":
		return runDev(ctx, args)
	case "user":
		return runUser(ctx, args, os.Stdout)
	case "webhook":
		return runWebhook(ctx, args, os.Stdout)
	case "token":
		return runToken(ctx, args, os.Stdout)
	case "help":
		fmt.Println("usage: agentd [serve|migrate|dev|user|webhook|token] [flags]; agentd CMD -h for flags")
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, migrate, dev, user, webhook or token)", cmd)
}

func runServe(ctx context.Context, args []string) error {
	m := NewMain()
	if err := m.ParseFlags("serve", args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	m.Logger.Info("agentd serving", "url", m.URL())
	<-ctx.Done()
	m.Logger.Info("shutting down")
	return m.Close()
}
