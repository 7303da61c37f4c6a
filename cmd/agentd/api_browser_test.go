package main

import (
	"net/http"
	"testing"
	"time"
)

// TestBrowserAPIHostileStrings: SQL-looking and HTML strings an integrator writes through the API
// (a UserData value, a notice to the agent) reach the agent's console live and are shown as
// the literal text: no element is injected, no script runs, and the database took them as data.
func TestBrowserAPIHostileStrings(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	newAgent(t, m, "alice", 3)
	token := apiToken(t, m, "crm", "read,write", "")

	browser := newBrowser(t)
	tab := newTab(t, browser)
	consoleFor(t, tab, m.URL(), "alice")
	click(t, tab, `#presence button[data-state=ready]`)
	poll(t, tab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)
	customer, data := startSession(t, m, map[string]any{"username": "Carol"})
	id := data.str("session_id")
	poll(t, tab, "offer", `!!document.querySelector('#offers button[data-cmd=accept]')`)
	click(t, tab, `#offers button[data-cmd=accept]`)
	poll(t, tab, "chat panel", `(p => !!p && !p.hidden)(document.getElementById('chat-`+id+`'))`)

	const xss = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`
	const sql = `'; DROP TABLE userdata; -- " OR 1=1`
	r := apiCall(t, m, "PUT", "/api/v1/interactions/"+id+"/userdata", token, map[string]any{"userdata": map[string]any{"Note": xss, "Query": sql}})
	if r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.raw)
	}
	r = apiCall(t, m, "POST", "/api/v1/interactions/"+id+"/notices", token, map[string]any{"to": "agent", "payload": map[string]any{"text": xss + sql}})
	if r.status != http.StatusCreated {
		t.Fatalf("notice: %d %s", r.status, r.raw)
	}
	r = apiCall(t, m, "POST", "/api/v1/interactions/"+id+"/notices", token, map[string]any{"to": "agent", "payload": map[string]any{"html": "<b>bold</b>"}})
	if r.status != http.StatusCreated {
		t.Fatalf("raw notice: %d %s", r.status, r.raw)
	}

	poll(t, tab, "UserData values as text", `document.querySelector('#ud-`+id+` tr[data-key="Note"] .value')?.textContent === `+jsString(xss)+
		` && document.querySelector('#ud-`+id+` tr[data-key="Query"] .value')?.textContent === `+jsString(sql))
	poll(t, tab, "notices as text", `(n => !!n && n.textContent.includes(`+jsString(xss+sql)+`) && n.textContent.includes('<b>bold</b>') && n.textContent.includes('integration:crm → you'))(document.getElementById('notices-`+id+`'))`)
	if eval[bool](t, tab, `window.pwned !== undefined || document.querySelector('#chat-`+id+` img, #chat-`+id+` script, #notices-`+id+` b, #ud-`+id+` b') !== null`) {
		t.Fatal("an integrator's string was rendered as HTML in the console")
	}
	screenshot(t, tab, "console-api-strings.png")
	// The database took the SQL-looking text as a value, and still answers.
	if v := udValue(m, id, "Query"); v != jsString(sql) {
		t.Fatalf("Query = %s", v)
	}
	// The agent's notices never reached the customer; the customer is still served.
	mustOK(t, customer.do("send_message", map[string]any{"text": "still here"}))
	for _, f := range customer.snapshot() {
		if f.str("type") == "notice" && f.str("party", "name") == "integration:crm" {
			t.Fatalf("the customer got an agent-only notice: %v", f)
		}
	}
}
