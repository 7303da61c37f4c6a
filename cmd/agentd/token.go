package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"agentd"
	"agentd/notify"
	"agentd/postgres"
)

// tokenUsage lists the token subcommands.
const tokenUsage = "usage: agentd token create --name NAME [--scopes read,write,events,webhooks] [--user USERNAME]" +
	" | agentd token list | agentd token revoke --name NAME"

// runToken implements `agentd token create|list|revoke` (docs/api.md, Tokens).
func runToken(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	sub, args := args[0], args[1:]
	var cfg Config
	fs := flag.NewFlagSet("agentd token "+sub, flag.ContinueOnError)
	cfg.bindFlags(fs)
	var name, scopes, user string
	switch sub {
	case "create":
		fs.StringVar(&name, "name", "", "the token's name: 1 to 64 letters, digits, '.', '_' or '-' (required)")
		fs.StringVar(&scopes, "scopes", "read", "comma-separated scopes: read, write, events, webhooks")
		fs.StringVar(&user, "user", "", "bind the token to this agent: it sees only the agent's interactions")
	case "revoke":
		fs.StringVar(&name, "name", "", "the live token's name (required; see agentd token list)")
	case "list":
	default:
		return fmt.Errorf("unknown token command %q (want create, list or revoke)", sub)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if sub != "list" && strings.TrimSpace(name) == "" {
		return fmt.Errorf("agentd token %s needs --name", sub)
	}
	sc, err := notify.ParseScopes(scopes)
	if err != nil {
		return err
	}
	db, err := cliDatabase(ctx, &cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Revocation needs no message to the nodes: they authenticate every request against the table.
	tokens := postgres.NewTokenStore(db, nil)
	fail := func(err error) error { return fmt.Errorf("%s", errorText(err)) }
	switch sub {
	case "create":
		secret, t, err := tokens.CreateToken(ctx, name, sc, strings.TrimSpace(user))
		if err != nil {
			if agentd.ErrorCode(err) == "user_not_found" {
				return fmt.Errorf("no user is named %q (see agentd user list)", user)
			}
			return fail(err)
		}
		bound := ""
		if t.Username != "" {
			bound = ", bound to " + t.Username
		}
		fmt.Fprintf(out, "created token %q (scopes %s%s)\ntoken: %s\nThe token is shown only now and will not be shown again: keep it secret.\n",
			t.Name, scopeList(t.Scopes), bound, secret)
	case "list":
		ts, err := tokens.Tokens(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tPREFIX\tSCOPES\tUSER\tCREATED\tLAST USED\tREVOKED")
		for _, t := range ts {
			user := t.Username
			if user == "" {
				user = "-"
			}
			fmt.Fprintf(w, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Prefix, scopeList(t.Scopes), user,
				t.CreatedAt.UTC().Format(time.RFC3339), cliTime(t.LastUsedAt), cliTime(t.RevokedAt))
		}
		return w.Flush()
	case "revoke":
		if err := tokens.RevokeToken(ctx, name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "revoked token %q: it no longer authenticates\n", strings.TrimSpace(name))
	}
	return nil
}

// scopeList shows a token's scopes.
func scopeList(sc []notify.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}

// cliTime shows an optional time, "-" when unset.
func cliTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
