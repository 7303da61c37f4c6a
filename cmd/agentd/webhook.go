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

	"agentd/notify"
	"agentd/postgres"
)

// webhookUsage lists the webhook subcommands.
const webhookUsage = "usage: agentd webhook add --url URL [--events a,b] [--description D] | agentd webhook list" +
	" | agentd webhook remove --id N | agentd webhook rotate --id N | agentd webhook resume --id N" +
	" | agentd webhook test --id N" +
	" | agentd webhook deliveries --id N | agentd webhook redeliver --delivery ID"

// runWebhook implements `agentd webhook add|list|remove|rotate|resume|test|deliveries|redeliver`.
func runWebhook(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(webhookUsage)
	}
	sub, args := args[0], args[1:]
	var cfg Config
	fs := flag.NewFlagSet("agentd webhook "+sub, flag.ContinueOnError)
	cfg.bindFlags(fs)
	var rawURL, events, description, delivery string
	var id int64
	switch sub {
	case "add":
		fs.StringVar(&rawURL, "url", "", "the receiver's http or https URL (required)")
		fs.StringVar(&events, "events", "", "comma-separated event types to deliver (default: every type)")
		fs.StringVar(&description, "description", "", "what the endpoint is for")
	case "remove", "rotate", "resume", "test", "deliveries":
		fs.Int64Var(&id, "id", 0, "the endpoint's id (required; see agentd webhook list)")
	case "redeliver":
		fs.StringVar(&delivery, "delivery", "", "the delivery's id (required; see agentd webhook deliveries)")
	case "list":
	default:
		return fmt.Errorf("unknown webhook command %q (want add, list, remove, rotate, resume, test, deliveries or redeliver)", sub)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case sub == "add" && strings.TrimSpace(rawURL) == "":
		return errors.New("agentd webhook add needs --url")
	case (sub == "remove" || sub == "rotate" || sub == "resume" || sub == "test" || sub == "deliveries") && id <= 0:
		return fmt.Errorf("agentd webhook %s needs --id N", sub)
	case sub == "redeliver" && strings.TrimSpace(delivery) == "":
		return errors.New("agentd webhook redeliver needs --delivery ID")
	}
	types, err := notify.ParseTypes(events)
	if err != nil {
		return err
	}
	db, err := cliDatabase(ctx, &cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// The deliveries this queues are sent by the running nodes' workers.
	hooks := notify.NewWebhooks(notify.WebhooksDeps{Store: postgres.NewWebhookStore(db), Config: cfg.Webhooks})
	fail := func(err error) error { return fmt.Errorf("%s", errorText(err)) }
	switch sub {
	case "add":
		e, secret, err := hooks.Add(ctx, rawURL, types, description)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "added webhook %d for %s (events %s)\nsecret: %s\nThe secret is shown only now: keep it to verify Agentd-Signature.\n",
			e.ID, e.URL, eventList(e.Events), secret)
	case "list":
		es, err := hooks.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tURL\tEVENTS\tSTATE\tDESCRIPTION\tPAUSED REASON")
		for _, e := range es {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.URL, eventList(e.Events), e.State(), e.Description, e.PausedReason)
		}
		return w.Flush()
	case "remove":
		if err := hooks.Remove(ctx, id); err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "removed webhook %d\n", id)
	case "rotate":
		e, secret, err := hooks.Rotate(ctx, id)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "rotated the secret of webhook %d\nsecret: %s\nThe previous secret also signs until %s.\n",
			e.ID, secret, e.PreviousExpiresAt.UTC().Format(time.RFC3339))
	case "resume":
		e, err := hooks.Resume(ctx, id)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "resumed webhook %d: new events are delivered to %s again\n"+
			"Deliveries cancelled while it was paused are not sent: redeliver them with agentd webhook redeliver.\n", e.ID, e.URL)
	case "test":
		d, err := hooks.SendTest(ctx, id)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "queued test delivery %s to webhook %d\n", d.ID, id)
	case "deliveries":
		ds, err := hooks.Deliveries(ctx, id, 50)
		if err != nil {
			return fail(err)
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "DELIVERY\tEVENT\tSTATE\tATTEMPTS\tLAST STATUS\tLATENCY\tNEXT ATTEMPT\tERROR")
		for _, d := range ds {
			next := "-"
			if d.NextAttemptAt != nil && d.State == notify.DeliveryPending {
				next = d.NextAttemptAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", d.ID, d.EventType, d.State, d.Attempts, d.LastStatus, d.LastLatency, next, d.LastError)
		}
		return w.Flush()
	case "redeliver":
		d, err := hooks.Redeliver(ctx, delivery)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "queued delivery %s (%s) again\n", d.ID, d.EventType)
	}
	return nil
}

// eventList shows an event filter.
func eventList(ts []notify.Type) string {
	if len(ts) == 0 {
		return "all"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}
