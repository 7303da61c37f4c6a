package main

import (
	"context"
	"fmt"
	"strings"

	"agentd"
	"agentd/agent"
	"agentd/chat"
)

// demoServices are the services `agentd dev` seeds, with their welcome notices.
var demoServices = []struct{ name, display, welcome string }{
	{"default", "Default", ""},
	{"support", "Support", "Welcome to Support. An agent will be with you shortly."},
	{"sales", "Sales", "Welcome to Sales. An agent will be with you shortly."},
}

// demoCanned are the canned responses `agentd dev` seeds, for every service.
var demoCanned = []agent.CannedResponse{
	{Title: "Greeting", Body: "Hello! Thanks for reaching out. How can I help you today?"},
	{Title: "One moment", Body: "Let me look into that for you; it will only take a moment."},
	{Title: "Anything else?", Body: "Is there anything else I can help you with?"},
	{Title: "Goodbye", Body: "Thank you for chatting with us. Have a great day!"},
}

// seedDemo makes a fresh dev install show every feature in its first chat: services with
// dispositions and an after-chat survey, and a few canned responses. It changes nothing an admin
// set up already (a service with dispositions or a survey keeps its strategy; canned responses
// are added only where there are none), so running `agentd dev` again is harmless. The changes
// are audited as agentd's.
func seedDemo(ctx context.Context, m *Main) error {
	for _, s := range demoServices {
		if err := m.DB.EnsureService(ctx, s.name, s.display, chat.Strategy{WelcomeNotice: s.welcome}); err != nil {
			return fmt.Errorf("seed service %s: %w", s.name, err)
		}
		si, err := m.Admin.Service(ctx, s.name)
		if err != nil {
			return fmt.Errorf("seed service %s: %w", s.name, err)
		}
		st, err := agent.ParseStrategy(si.Strategy)
		if err != nil || len(st.Dispositions) > 0 || st.Survey != nil {
			continue // configured by someone: leave it
		}
		st.Dispositions = []string{"Resolved", "Follow-up needed", "Escalated", "No answer from customer"}
		st.Survey = &agent.Survey{When: "ended"}
		if err := m.Admin.UpdateService(ctx, agent.User{}, s.name, agent.ServiceChange{DisplayName: si.DisplayName, Enabled: si.Enabled, Strategy: st}); err != nil {
			return fmt.Errorf("seed strategy of %s: %w", s.name, err)
		}
	}
	existing, err := m.Admin.CannedResponses(ctx, "")
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return nil
	}
	for _, c := range demoCanned {
		if _, err := m.Admin.SaveCannedResponse(ctx, agent.User{}, c); err != nil {
			return fmt.Errorf("seed canned response %q: %w", c.Title, err)
		}
	}
	return nil
}

// demoUsers are the dev sign-ins `agentd dev` prints, one per role.
var demoUsers = []struct {
	name, display, password string
	role                    agent.Role
}{
	{"agent", "Alex (demo agent)", "agent-demo-pass", agent.RoleAgent},
	{"supervisor", "Sam (demo supervisor)", "supervisor-demo-pass", agent.RoleSupervisor},
	{"admin", "Ada (demo admin)", "admin-demo-pass", agent.RoleAdmin},
}

// seedDemoUsers creates the demo users (dev only; an existing one is left as it is) and returns
// the lines that print their sign-ins.
func seedDemoUsers(ctx context.Context, m *Main) (string, error) {
	var creds strings.Builder
	for _, d := range demoUsers {
		_, err := m.Accounts.CreateUser(ctx, agent.NewUser{Username: d.name, Password: d.password, Role: d.role, DisplayName: d.display,
			Services: []string{"default", "support", "sales"}})
		if err != nil && agentd.ErrorCode(err) != "username_taken" {
			return "", fmt.Errorf("seed user %s: %w", d.name, err)
		}
		fmt.Fprintf(&creds, "  %-11s username %-11s password %s\n", string(d.role)+":", d.name, d.password)
	}
	return creds.String(), nil
}
