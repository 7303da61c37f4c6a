package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/chat"
)

// TestSupervisorJourney is issue 9's "Done when" as one person's flow on a dev node (what
// `make run` starts, with the sign-ins it prints): a customer on the demo page chats with the demo
// agent in the console; the demo supervisor, in a third browser context, sees the chat appear on
// the dashboard, opens it with "Monitor", watches it live, whispers to the agent (the customer
// never sees it), barges in, writes to the customer and leaves. The next day (the chat is moved
// one day back) the supervisor finds it by a word of its text and by its CoBrowseSessionId, and
// reads its UserData history and the whisper in its transcript.
func TestSupervisorJourney(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) {
		c.Dev = true
		c.Router.RouteInterval = 50 * time.Millisecond
	})
	ctx := context.Background()
	if err := seedDemo(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := seedDemoUsers(ctx, m); err != nil {
		t.Fatal(err)
	}
	pass := map[string]string{}
	for _, u := range demoUsers {
		pass[u.name] = u.password
	}
	base := m.URL()
	b := newBrowser(t)
	cust, console, sup := newTab(t, b), newTab(t, b), newTab(t, b)

	// Links and form buttons here navigate: they are clicked once (click retries a click on a
	// replaced node, which would follow the link twice).
	// The supervisor signs in first and lands on the dashboard.
	signIn(t, sup, base, "supervisor", pass["supervisor"])
	poll(t, sup, "the dashboard, live", `location.pathname === '/supervisor' && document.getElementById('dash-status').textContent.startsWith('Live')`)

	signIn(t, console, base, "agent", pass["agent"])
	poll(t, console, "the console", `document.getElementById('console-status')?.textContent === 'Connected.'`)
	click(t, console, `#presence button[data-state=ready]`)
	poll(t, sup, "the agent Ready on the dashboard", `[...document.querySelectorAll('#dash-agents-table tbody tr')].some(r =>
		r.textContent.includes('Alex (demo agent)') && r.textContent.includes('Ready'))`)

	browse(t, cust, chromedp.Navigate(base+"/demo"), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Dora"), chromedp.Click(chromedp.ID("start")), chromedp.WaitVisible(chromedp.ID("message")))
	var id string
	waitFor(t, "the chat in Postgres", func() bool {
		_ = m.DB.Pool.QueryRow(ctx, `SELECT id FROM interactions WHERE customer_name = 'Dora'`).Scan(&id)
		return id != ""
	})
	poll(t, console, "the offer", `!!document.querySelector('#offers button[data-cmd=accept]')`)
	click(t, console, `#offers button[data-cmd=accept]`)
	browse(t, cust, chromedp.SendKeys(chromedp.ID("message"), "My hovercraft is full of eels"), chromedp.Click(chromedp.ID("send")))
	browse(t, cust, chromedp.SendKeys(chromedp.ID("cobrowse-id"), "CB-7331"), chromedp.Click(chromedp.ID("cobrowse-share")))

	// The dashboard shows the chat live, with its agent and the unanswered message, without a
	// reload; "Monitor" opens it.
	poll(t, sup, "the chat under Live chats", `(r => !!r && r.textContent.includes('Dora') && r.textContent.includes('Alex (demo agent)') &&
		!r.querySelector('.pending').textContent.includes('No'))(document.getElementById('dash-live-`+id+`'))`)
	screenshotView(t, sup, "supervisor-dashboard.png")
	browse(t, sup, chromedp.Click(`#dash-live-`+id+` a.button`))
	poll(t, sup, "monitoring", `location.pathname === '/supervisor/monitor/`+id+`' &&
		document.getElementById('monitor-status').textContent.startsWith('Monitoring live') &&
		document.getElementById('mon-transcript').textContent.includes('hovercraft')`)
	poll(t, sup, "the chat's UserData", `document.getElementById('monitor').textContent.includes('CB-7331')`)
	poll(t, console, "Monitored by", `document.getElementById('monitored-`+id+`').textContent.trim() === 'Monitored by Sam (demo supervisor)'`)

	// Live: the agent answers, the customer types.
	browse(t, console, chromedp.SendKeys(chromedp.ID("message-"+id), "Let me look at that."), chromedp.Click(chromedp.CSS(`#chat-`+id+` .composer button[type=submit]`)))
	poll(t, sup, "the agent's answer, live", `document.getElementById('mon-transcript').textContent.includes('Let me look at that.')`)
	browse(t, cust, chromedp.SendKeys(chromedp.ID("message"), "it is urgent"))
	poll(t, sup, "the customer's typing", `document.getElementById('mon-typing').textContent.includes('Dora')`)

	// Whisper: in the console, marked; never on the customer's page.
	browse(t, sup, chromedp.SendKeys(chromedp.ID("whisper-text"), "Offer the eel-free upgrade"))
	click(t, sup, `#whisper-form button[type=submit]`)
	poll(t, console, "the whisper, marked", `[...document.querySelectorAll('#transcript-`+id+` li.ev-whisper')].some(li =>
		li.textContent.includes('Whisper from Sam (demo supervisor):') && li.textContent.includes('Offer the eel-free upgrade'))`)

	// Barge in, write to the customer, leave: the agent keeps the chat.
	click(t, sup, `#barge-in`)
	poll(t, cust, "the supervisor joined", `document.getElementById('transcript-list').textContent.includes('Sam (demo supervisor)')`)
	browse(t, sup, chromedp.SendKeys(chromedp.ID("mon-message"), "I am the supervisor, happy to help too."))
	click(t, sup, `#mon-send-form button[type=submit]`)
	poll(t, cust, "the supervisor's message", `document.getElementById('transcript-list').textContent.includes('I am the supervisor, happy to help too.')`)
	poll(t, console, "the supervisor's message in the console", `document.getElementById('transcript-`+id+`').textContent.includes('I am the supervisor')`)
	screenshot(t, sup, "supervisor-monitor.png")
	click(t, sup, `#mon-leave`)
	poll(t, sup, "left", `!!document.getElementById('barge-in')`)
	if eval[bool](t, cust, `document.body.textContent.includes('eel-free')`) {
		t.Fatal("the customer's page shows the whisper")
	}
	if in, err := m.Chat.Interaction(ctx, id); err != nil || in.State != "active" {
		t.Fatalf("after Leave the chat is %q (%v), want active with the agent", in.State, err)
	}
	click(t, console, `#chat-`+id+` button[data-cmd=end]`)
	waitFor(t, "the chat ended", func() bool {
		in, err := m.Chat.Interaction(ctx, id)
		return err == nil && in.State.Over()
	})

	// The next day: the chat is yesterday's, and today's chat of another customer uses the same
	// word and another co-browse session, so each search below has something to leave out.
	decoy, err := m.Chat.Start(ctx, chat.StartParams{CommandID: "c-0123456789abcdef0123456789abcdef", Service: "default", Username: "Dexter",
		UserData: map[string]json.RawMessage{"CoBrowseSessionId": json.RawMessage(`"CB-7332"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Chat.Send(ctx, decoy.Party, "", "Is my hovercraft ready?", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.Pool.Exec(ctx, `UPDATE interactions SET created_at = created_at - interval '1 day' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	browse(t, sup, chromedp.Navigate(base+"/supervisor"))
	browse(t, sup, chromedp.Click(`a[href="/supervisor/search"]`))
	poll(t, sup, "the search page", `!!document.getElementById('search-form')`)
	browse(t, sup, chromedp.SendKeys(chromedp.ID("search-text"), "hovercraft"))
	eval[bool](t, sup, `(document.getElementById('search-from').value = `+jsString(yesterday)+`,
		document.getElementById('search-to').value = `+jsString(yesterday)+`, true)`)
	browse(t, sup, chromedp.Click(`#search-form button[type=submit]`))
	poll(t, sup, "found by its text", `location.search.includes('text=hovercraft') && document.querySelectorAll('#results-table tbody tr').length === 1 &&
		document.querySelector('#results-table tbody a').getAttribute('href') === '/supervisor/interactions/`+id+`'`)

	// Without the dates the word finds both chats.
	browse(t, sup, chromedp.Navigate(base+"/supervisor/search?text=hovercraft"))
	poll(t, sup, "the word in both chats", `document.querySelectorAll('#results-table tbody tr').length === 2`)
	browse(t, sup, chromedp.Navigate(base+"/supervisor/search"))
	browse(t, sup, chromedp.SendKeys(chromedp.ID("search-key"), "CoBrowseSessionId"), chromedp.SendKeys(chromedp.ID("search-value"), "CB-7331"))
	eval[bool](t, sup, `(document.getElementById('search-from').value = `+jsString(yesterday)+`, true)`)
	browse(t, sup, chromedp.Click(`#search-form button[type=submit]`))
	poll(t, sup, "found by its CoBrowseSessionId", `location.search.includes('value=CB-7331') && document.querySelectorAll('#results-table tbody tr').length === 1 &&
		document.querySelector('#results-table tbody a').textContent === 'Dora'`)
	browse(t, sup, chromedp.Click(`#results-table tbody a`))
	poll(t, sup, "the review", `location.pathname === '/supervisor/interactions/`+id+`'`)
	history := eval[string](t, sup, `document.getElementById('userdata-history').textContent`)
	for _, want := range []string{"CoBrowseSessionId", "CB-7331", "client"} {
		if !strings.Contains(history, want) {
			t.Errorf("UserData history lacks %q: %s", want, history)
		}
	}
	if !eval[bool](t, sup, `[...document.querySelectorAll('#transcript li, #transcript tr')].some(e =>
		e.textContent.includes('Offer the eel-free upgrade') && e.textContent.toLowerCase().includes('whisper'))`) {
		t.Error("the review's Transcript lacks the whisper, marked")
	}
	for _, action := range []string{"supervisor.monitor_start", "supervisor.monitor_stop", "supervisor.whisper", "supervisor.barge_in", "supervisor.message", "supervisor.leave"} {
		if auditCount(t, m, id, "supervisor", action) == 0 {
			t.Errorf("no %s audit row", action)
		}
	}
}
