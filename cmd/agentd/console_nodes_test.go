package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/agent"
)

// TestBrowserConsoleTwoNodes: behind a load balancer an agent's tabs and the customer can land on
// different nodes. The customer is on node A; the agent has one tab on node A and one on node B.
// Everything either side does must show live on every page.
func TestBrowserConsoleTwoNodes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	fast := func(c *Config) { c.Router.RouteInterval = 100 * time.Millisecond }
	a := startNode(t, db, fast, func(c *Config) { c.NodeID = "console-a" })
	b := startNode(t, db, fast, func(c *Config) { c.NodeID = "console-b" })
	setStrategy(t, a, "default", agent.Strategy{WelcomeNotice: "Welcome!"})
	newAgent(t, a, "lee", 3)

	browser := newBrowser(t)
	onB := newTab(t, browser)
	consoleFor(t, onB, b.URL(), "lee")
	onA := newTab(t, browser)
	consoleFor(t, onA, a.URL(), "lee")

	click(t, onB, `#presence button[data-state=ready]`)
	poll(t, onA, "ready shown on A", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)

	c, d := startSession(t, a, map[string]any{"username": "Nina"})
	id := d.str("session_id")
	poll(t, onB, "offer on B", `!!document.querySelector('#offer-`+id+` button[data-cmd=accept]')`)
	click(t, onB, `#offer-`+id+` button[data-cmd=accept]`)
	c.waitEvent("agent joined", func(ev frame) bool { return ev.str("kind") == "party_joined" && ev.str("party", "type") == "agent" })
	poll(t, onA, "chat listed on A", `!!document.getElementById('item-`+id+`')`)

	mustOK(t, c.do("send_message", map[string]any{"text": "Hello from node A"}))
	mustOK(t, c.do("typing", map[string]any{"is_typing": true, "text": "still typ"}))
	poll(t, onB, "message on B", `document.getElementById('transcript-`+id+`')?.textContent.includes('Hello from node A')`)
	poll(t, onB, "typing preview on B", `document.getElementById('typing-`+id+`')?.textContent.includes('still typ')`)
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"OrderId": "A-1001"}}))
	poll(t, onB, "customer's UserData on B", `document.querySelector('#ud-`+id+` tr[data-key="OrderId"] .value')?.textContent === 'A-1001'`)

	browse(t, onB, chromedp.SendKeys(chromedp.ID("message-"+id), "Answer from node B\n"))
	c.waitEvent("agent message on A", func(ev frame) bool { return ev.str("content", "text") == "Answer from node B" })
	poll(t, onA, "agent's own message in the tab on A", `document.getElementById('transcript-`+id+`')?.textContent.includes('Answer from node B')`)
}
