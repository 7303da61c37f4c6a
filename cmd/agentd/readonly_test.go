package main

import (
	"context"
	"testing"
	"time"

	"agentd/agent"
	"agentd/userdata"
)

// TestEndedChatIsReadOnly: after the end the server takes no message, typing, notice or UserData
// edit from the agent (UserData edits and notices were still taken); the wrap-up still works.
func TestEndedChatIsReadOnly(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved"}})
	u := newAgent(t, m, "vic", 1)
	ready(t, m, u)
	c, id := acceptedChat(t, m, u, nil)
	edit := func(cmd string) error {
		return m.Agents.ChangeUserData(ctx, u, id, cmd, []userdata.Change{{Key: "Tier", Value: "gold"}})
	}
	if err := edit("console:before"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, c.do("leave", map[string]any{}))

	if _, err := m.Agents.Send(ctx, u, id, "console:send", "Hello?"); err == nil {
		t.Error("a message was sent to an ended chat")
	}
	wantCode(t, m.Agents.Typing(ctx, u, id, true, "Hel"), "session_ended")
	_, err := m.Agents.SendNotice(ctx, u, id, "console:notice", []byte(`{"text":"Anyone?"}`))
	wantCode(t, err, "session_ended")
	wantCode(t, edit("console:after"), "session_ended")
	wantCode(t, m.Agents.ChangeUserData(ctx, u, id, "console:delete", []userdata.Change{{Key: "Tier"}}), "session_ended")
	// A retried edit that was applied before the end answers as it did then.
	if err := edit("console:before"); err != nil {
		t.Fatalf("retried edit after the end: %v", err)
	}
	if got := udValue(m, id, "Tier"); got != `"gold"` {
		t.Fatalf("Tier = %s", got)
	}
	if err := m.Agents.WrapUp(ctx, u, id, "Resolved", ""); err != nil {
		t.Fatal(err)
	}
	if got := udValue(m, id, "Disposition"); got != `"Resolved"` {
		t.Fatalf("Disposition = %s", got)
	}
}
