package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"agentd"
	"agentd/agent"
	"agentd/postgres"
)

// userUsage lists the user subcommands.
const userUsage = "usage: agentd user add --username NAME --password PASS --role agent|supervisor|admin [--display-name N] [--capacity N] [--services a,b]" +
	" | agentd user list | agentd user disable --username NAME | agentd user enable --username NAME"

// runUser implements `agentd user add|list|disable|enable`.
func runUser(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	sub, args := args[0], args[1:]
	var cfg Config
	fs := flag.NewFlagSet("agentd user "+sub, flag.ContinueOnError)
	cfg.bindFlags(fs)
	var nu agent.NewUser
	var role, services string
	switch sub {
	case "disable", "enable":
		fs.StringVar(&nu.Username, "username", "", "the user's login name (required)")
	case "add":
		fs.StringVar(&nu.Username, "username", "", "login name (required)")
		fs.StringVar(&nu.Password, "password", "", "password, at least 8 characters (required)")
		fs.StringVar(&role, "role", "agent", "agent, supervisor or admin")
		fs.StringVar(&nu.DisplayName, "display-name", "", "name shown to customers (default: the username)")
		fs.IntVar(&nu.Capacity, "capacity", agent.DefaultCapacity, "concurrent chats")
		fs.StringVar(&services, "services", "default", "comma-separated services the user takes chats from")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sub {
	case "add", "list":
	case "disable", "enable":
		if strings.TrimSpace(nu.Username) == "" {
			return fmt.Errorf("agentd user %s needs --username", sub)
		}
	default:
		return fmt.Errorf("unknown user command %q (want add, list, disable or enable)", sub)
	}
	db, err := cliDatabase(ctx, &cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// No node runs here: what the CLI commits is announced to the nodes by NOTIFY only.
	store := postgres.NewAgentStore(postgres.NewChatStore(postgres.NewCommitter(db, "cli", nil)))
	agents := agent.NewAccounts(agent.AccountsDeps{Store: store, Config: cfg.Accounts, Logger: cfg.newLogger(io.Discard)})
	switch sub {
	case "add":
		if nu.Role, err = agent.ParseRole(role); err != nil {
			return err
		}
		for _, s := range strings.Split(services, ",") {
			if s = strings.TrimSpace(s); s != "" {
				nu.Services = append(nu.Services, s)
			}
		}
		u, err := agents.CreateUser(ctx, nu)
		if err != nil {
			return fmt.Errorf("%s", errorText(err))
		}
		fmt.Fprintf(out, "created %s %q (id %d, capacity %d, services %s)\n", u.Role, u.Username, u.ID, u.Capacity, strings.Join(u.Services, ","))
	case "disable", "enable":
		// Audited as user.update by agentd, like the admin form; disabling ends the user's
		// sessions, and every node closes the user's open consoles (the change is NOTIFY-ed).
		u, changed, err := agents.SetDisabled(ctx, nu.Username, sub == "disable")
		if err != nil {
			return fmt.Errorf("%s", errorText(err))
		}
		state := map[bool]string{true: "disabled", false: "enabled"}[u.Disabled]
		if !changed {
			fmt.Fprintf(out, "%s %q was %s already\n", u.Role, u.Username, state)
			return nil
		}
		fmt.Fprintf(out, "%s %s %q (id %d)\n", state, u.Role, u.Username, u.ID)
	case "list":
		users, err := agents.Users(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tUSERNAME\tDISPLAY NAME\tROLE\tCAPACITY\tSERVICES\tSTATE\tDISABLED")
		for _, u := range users {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%v\n", u.ID, u.Username, u.DisplayName, u.Role, u.Capacity, strings.Join(u.Services, ","), u.State, u.Disabled)
		}
		return w.Flush()
	}
	return nil
}

// errorText prefers an application error's client-safe message.
func errorText(err error) string {
	if agentd.ErrorClass(err) != agentd.EINTERNAL {
		return agentd.ErrorMessage(err)
	}
	return err.Error()
}

// cliDatabase loads the configuration of a CLI command (agentd user, token, webhook), migrates
// the database and opens it. The caller closes it.
func cliDatabase(ctx context.Context, cfg *Config) (*postgres.DB, error) {
	if err := cfg.load(); err != nil {
		return nil, err
	}
	if _, err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	return postgres.Open(ctx, cfg.DatabaseURL, cfg.newLogger(io.Discard))
}
