package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/agent"
)

// tabTo presses Tab until the focused element matches css, as a keyboard user would move
// through the page. It fails when the element cannot be reached within 80 presses.
func tabTo(t *testing.T, tab context.Context, css string) {
	t.Helper()
	for range 80 {
		if eval[bool](t, tab, `!!document.activeElement && document.activeElement.matches(`+jsString(css)+`)`) {
			return
		}
		browse(t, tab, chromedp.KeyEvent("\t"))
	}
	t.Fatalf("%s cannot be reached with Tab; focus is on %s", css,
		eval[string](t, tab, `document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : 'nothing'`))
}

// press sends keys to whatever has the focus.
func press(t *testing.T, tab context.Context, keys string) {
	t.Helper()
	browse(t, tab, chromedp.KeyEvent(keys))
}

// TestBrowserConsoleKeyboard works a chat from sign-in to wrap-up with the keyboard alone: every
// step reaches its control with Tab and activates it with Enter or typing.
func TestBrowserConsoleKeyboard(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 100 * time.Millisecond })
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved", "Escalated"}, DispositionRequired: true})
	newAgent(t, m, "kim", 3)
	tab := newTab(t, newBrowser(t))

	browse(t, tab, chromedp.Navigate(m.URL()+"/login"), chromedp.WaitVisible(chromedp.ID("username")))
	checkAxe(t, tab, "sign-in page")
	tabTo(t, tab, "#username")
	press(t, tab, "kim")
	tabTo(t, tab, "#password")
	press(t, tab, "password-kim\r")
	poll(t, tab, "console", `document.getElementById('console-status')?.textContent === 'Connected.'`)
	checkAxe(t, tab, "empty console")

	tabTo(t, tab, `#presence button[data-state=ready]`)
	press(t, tab, "\r")
	poll(t, tab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)

	c, d := startSession(t, m, nil)
	id := d.str("session_id")
	poll(t, tab, "offer", `!!document.querySelector('#offers button[data-cmd=accept]')`)
	checkAxe(t, tab, "console with an offer")
	tabTo(t, tab, `#offers button[data-cmd=accept]`)
	press(t, tab, "\r")
	poll(t, tab, "chat panel", `(p => !!p && !p.hidden)(document.getElementById('chat-`+id+`'))`)

	tabTo(t, tab, "#message-"+id)
	press(t, tab, "Typed with the keyboard\r")
	c.waitEvent("the agent's message", func(ev frame) bool { return ev.str("content", "text") == "Typed with the keyboard" })

	// A chat picked from "My chats" with the keyboard.
	tabTo(t, tab, "#item-"+id)
	press(t, tab, "\r")
	poll(t, tab, "chat selected", `!document.getElementById('chat-`+id+`').hidden`)

	tabTo(t, tab, `#chat-`+id+` button[data-cmd=end]`)
	press(t, tab, "\r")
	poll(t, tab, "wrap-up form", `!!document.getElementById('disposition-`+id+`')`)
	tabTo(t, tab, "#disposition-"+id)
	press(t, tab, "R") // type-ahead picks "Resolved" in a closed select
	poll(t, tab, "disposition chosen", `document.getElementById('disposition-`+id+`').value === 'Resolved'`)
	tabTo(t, tab, "#notes-"+id)
	press(t, tab, "Done by keyboard")
	tabTo(t, tab, `#chat-`+id+` form.wrapup button[type=submit]`)
	press(t, tab, "\r")
	waitFor(t, "disposition in UserData", func() bool { return udValue(m, id, "Disposition") == `"Resolved"` })
	poll(t, tab, "chat gone after wrap-up", `document.getElementById('chat-`+id+`') === null`)
}
