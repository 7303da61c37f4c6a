package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"agentd/agent"
)

// What a first-time user ran into (issue 7): each test here failed on the console as it was.

// onNewDocument runs js in every page the tab opens from now on, before the page's own scripts:
// the tests replace browser features (sound, desktop notifications) with recorders.
func onNewDocument(t *testing.T, tab context.Context, js string) {
	t.Helper()
	if _, err := chromedp.Call(tab, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js}); err != nil {
		t.Fatalf("add script: %v", err)
	}
}

// consoleChat signs username in, has it accept a new chat of customer in the console (clicking
// Accept) and returns the customer's client and the chat's id.
func consoleChat(t *testing.T, m *Main, tab context.Context, u agent.User, customer string) (*client, string) {
	t.Helper()
	consoleFor(t, tab, m.URL(), u.Username)
	ready(t, m, u)
	c, d := startSession(t, m, map[string]any{"username": customer})
	id := d.str("session_id")
	click(t, tab, `#offer-`+id+` button[data-cmd=accept]`)
	poll(t, tab, "chat panel", `(p => !!p && !p.hidden)(document.getElementById('chat-`+id+`'))`)
	return c, id
}

// TestBrowserConsoleTyping: the typing line goes away when the customer stops typing (it said
// "undefined"), sends the message, or leaves (it stayed up).
func TestBrowserConsoleTyping(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	u := newAgent(t, m, "tess", 2)
	tab := newTab(t, newBrowser(t))
	c, id := consoleChat(t, m, tab, u, "Carol")
	typingLine := `document.getElementById('typing-` + id + `').textContent`

	mustOK(t, c.do("typing", map[string]any{"is_typing": true, "text": "I need he"}))
	poll(t, tab, "typing preview", typingLine+`.includes('I need he')`)
	mustOK(t, c.do("typing", map[string]any{"is_typing": false}))
	poll(t, tab, "typing preview gone", `!`+typingLine+`.includes('I need he')`)
	if got := eval[string](t, tab, typingLine); got != "" {
		t.Fatalf("after the customer stopped typing the typing line says %q", got)
	}

	mustOK(t, c.do("typing", map[string]any{"is_typing": true, "text": "Where is my ord"}))
	poll(t, tab, "typing preview", typingLine+`.includes('Where is my ord')`)
	mustOK(t, c.do("send_message", map[string]any{"text": "Where is my order?"}))
	poll(t, tab, "the message", `document.getElementById('transcript-`+id+`').textContent.includes('Where is my order?')`)
	if got := eval[string](t, tab, typingLine); got != "" {
		t.Fatalf("after the customer's message the typing line says %q", got)
	}

	mustOK(t, c.do("typing", map[string]any{"is_typing": true, "text": "Never mi"}))
	poll(t, tab, "typing preview", typingLine+`.includes('Never mi')`)
	mustOK(t, c.do("leave", map[string]any{}))
	poll(t, tab, "the end in the transcript", `!!document.querySelector('#transcript-`+id+` .ev-session_ended')`)
	if got := eval[string](t, tab, typingLine); got != "" {
		t.Fatalf("after the customer left the typing line says %q", got)
	}
}

// TestBrowserConsoleEndedChat: once the customer leaves, the panel is read-only until the
// wrap-up (the composer, canned search, UserData and notice forms stayed usable), the status line
// says the chat ended (it still said "Chat accepted."), the focus goes to the wrap-up, and after
// Done the chat is in Recent chats at once (it stayed "None yet." until a reload) with a history
// page that says what the chat was.
func TestBrowserConsoleEndedChat(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved", "Escalated"}})
	u := newAgent(t, m, "uma", 2)
	tab := newTab(t, newBrowser(t))
	c, id := consoleChat(t, m, tab, u, "Carol")
	poll(t, tab, "accepted", `document.getElementById('console-status').textContent === 'Chat accepted.'`)
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"OrderId": "A-1017"}}))
	poll(t, tab, "customer's key", `!!document.querySelector('#ud-`+id+` button[data-cmd=edit_userdata][data-key=OrderId]')`)
	browse(t, tab, chromedp.SendKeys(chromedp.ID("message-"+id), "A reply I did not send"))

	mustOK(t, c.do("leave", map[string]any{}))
	poll(t, tab, "wrap-up form", `!!document.getElementById('disposition-`+id+`')`)
	if got := eval[string](t, tab, `document.getElementById('console-status').textContent`); !strings.Contains(got, "ended") || strings.Contains(got, "accepted") {
		t.Fatalf("status line after the customer left: %q", got)
	}
	poll(t, tab, "read-only panel", `document.getElementById('chat-`+id+`').textContent.includes('The chat has ended. Wrap it up below.')`)
	for what, expr := range map[string]string{
		"composer":               `document.getElementById('message-` + id + `').disabled`,
		"Send":                   `document.querySelector('#chat-` + id + ` .composer button[type=submit]').disabled`,
		"canned search":          `document.getElementById('canned-q-` + id + `').disabled`,
		"UserData form":          `!document.getElementById('ud-key-` + id + `')`,
		"UserData Edit / Delete": `!document.querySelector('#ud-` + id + ` button')`,
		"notice form":            `!document.getElementById('notice-` + id + `')`,
		"End and Transfer":       `!document.querySelector('#chat-` + id + ` [data-cmd=end], #transfer-` + id + `')`,
	} {
		if !eval[bool](t, tab, expr) {
			t.Errorf("%s still active after the chat ended", what)
		}
	}
	if got := eval[string](t, tab, `document.getElementById('message-`+id+`').value`); got != "A reply I did not send" {
		t.Errorf("the unsent reply is gone: %q", got)
	}
	// The focus was in the composer, which is disabled now: it moved to the wrap-up.
	if got := eval[string](t, tab, `document.activeElement.id`); got != "disposition-"+id {
		t.Errorf("focus after the end on %q, want the disposition", got)
	}
	checkAxe(t, tab, "console with a chat the customer left")

	browse(t, tab, chromedp.SetValue(chromedp.ID("disposition-"+id), "Resolved"))
	click(t, tab, `#chat-`+id+` form.wrapup button[type=submit]`)
	poll(t, tab, "chat wrapped", `document.getElementById('chat-`+id+`') === null`)
	poll(t, tab, "recent chat without a reload", `[...document.querySelectorAll('#recent a')].some(a => a.textContent.includes('Carol'))`)
	poll(t, tab, "focus after Done", `document.activeElement !== document.body && document.activeElement.matches('#recent a')`)

	// The history page says what the chat was, and leads back.
	browse(t, tab, chromedp.Navigate(eval[string](t, tab, `document.querySelector('#recent a').href`)))
	poll(t, tab, "history page", `!!document.getElementById('history-facts')`)
	facts := eval[map[string]string](t, tab, `Object.fromEntries(['date', 'duration', 'agents', 'service', 'state'].map(k => [k, document.getElementById('history-' + k).textContent.trim()]))`)
	if facts["agents"] != "Agent uma" || facts["service"] != "default" || facts["state"] != "Wrapped up (customer left)" ||
		!strings.HasSuffix(facts["duration"], " s") || facts["date"] == "" {
		t.Fatalf("history facts: %v", facts)
	}
	if href := eval[string](t, tab, `document.getElementById('history-back').getAttribute('href')`); href != "/console" {
		t.Fatalf("way back: %q", href)
	}
	checkAxe(t, tab, "history page of a chat the customer left")
}

// TestBrowserConsoleLayout: at 1366×768 and 1920×1080 the console has no horizontal scrollbar
// and the UserData table fits its box with long keys and values (Edit/Delete were clipped and
// values broken one character a line); the co-browse view can be widened, and opened in a window
// of its own.
func TestBrowserConsoleLayout(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) {
		c.Router.RouteInterval = 50 * time.Millisecond
		c.Agent.CoBrowseURL = "https://cobrowse.example/join?s={CoBrowseSessionId}"
	})
	u := newAgent(t, m, "wes", 2)
	tab := newTab(t, newBrowser(t))
	c, id := consoleChat(t, m, tab, u, "Carol with a rather long customer name")
	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{
		"FirstName":                          "Carol",
		"PreferredContactChannelDescription": "E-mail on weekdays, phone calls only in the evening after six",
		"ReturnURL":                          "https://shop.example/orders/2024/A-1017/items?sort=price&filter=unshipped&page=3&session=0123456789abcdef",
		"CoBrowseSessionId":                  "CB-1234",
	}}))
	mustOK(t, c.do("send_message", map[string]any{"text": "My order https://shop.example/orders/2024/A-1017/items?sort=price&filter=unshipped&page=3 has not arrived"}))
	poll(t, tab, "UserData and co-browse", `!!document.querySelector('#ud-`+id+` tr[data-key=ReturnURL]') && !!document.querySelector('#cobrowse-`+id+` iframe')`)

	// fits reports what does not fit: a horizontal page scroll, the table wider than its box,
	// a button outside it, a short value on more than one line.
	const fits = `(() => {
		const bad = [];
		const doc = document.documentElement;
		if (doc.scrollWidth > doc.clientWidth) bad.push('page scrolls sideways: ' + doc.scrollWidth + ' > ' + doc.clientWidth);
		const table = document.getElementById('ud-` + `IID');
		const box = table.closest('.box').getBoundingClientRect();
		const tr = table.getBoundingClientRect();
		if (tr.right > box.right + 0.5 || tr.left < box.left - 0.5) bad.push('table ' + tr.left + '..' + tr.right + ' outside its box ' + box.left + '..' + box.right);
		for (const b of table.querySelectorAll('button')) {
			const r = b.getBoundingClientRect();
			if (r.right > box.right + 0.5 || r.width === 0) bad.push(b.getAttribute('aria-label') + ' clipped');
		}
		const v = table.querySelector('tr[data-key=FirstName] .value');
		const lines = (() => { const rg = document.createRange(); rg.selectNodeContents(v); return rg.getClientRects().length; })();
		if (lines !== 1) bad.push('"Carol" takes ' + lines + ' lines');
		const frame = document.querySelector('#cobrowse-IID iframe').getBoundingClientRect();
		if (frame.right > document.getElementById('chat-IID').getBoundingClientRect().right + 0.5) bad.push('co-browse frame overflows the panel');
		return bad.join('; ');
	})()`
	check := func(what string) {
		t.Helper()
		if bad := eval[string](t, tab, strings.ReplaceAll(fits, "IID", id)); bad != "" {
			t.Errorf("%s: %s", what, bad)
		}
	}
	for _, size := range []struct{ w, h int64 }{{1366, 768}, {1920, 1080}} {
		browse(t, tab, chromedp.EmulateViewport(size.w, size.h))
		what := fmt.Sprintf("%d×%d", size.w, size.h)
		check(what)

		// Widened, co-browse takes most of the panel, and still nothing scrolls sideways.
		click(t, tab, `#cobrowse-`+id+` button[data-cmd=widen_cobrowse]`)
		poll(t, tab, "widened", `document.querySelector('#cobrowse-`+id+` button[data-cmd=widen_cobrowse]').getAttribute('aria-pressed') === 'true'`)
		share := eval[float64](t, tab, `document.querySelector('#cobrowse-`+id+` iframe').getBoundingClientRect().width / document.getElementById('chat-`+id+`').getBoundingClientRect().width`)
		if share < 0.6 {
			t.Errorf("%s: the widened co-browse view takes %.0f%% of the panel's width", what, share*100)
		}
		check(what + " with co-browse widened")
		if size.w == 1366 {
			screenshot(t, tab, "console-cobrowse-wide.png")
		}
		click(t, tab, `#cobrowse-`+id+` button[data-cmd=widen_cobrowse]`)
		poll(t, tab, "narrow again", `document.querySelector('#cobrowse-`+id+` button[data-cmd=widen_cobrowse]').getAttribute('aria-pressed') === 'false'`)
	}
	if got := eval[string](t, tab, `(a => a.target + ' ' + a.rel)(document.querySelector('#cobrowse-`+id+` a[href^="https://cobrowse.example/"]'))`); got != "_blank noopener noreferrer" {
		t.Errorf("co-browse pop-out link: %q", got)
	}
	checkAxe(t, tab, "console with co-browse")
}

// TestBrowserConsoleNoticesAndSystemKeys: agentd's own UserData keys (_agentd.…) are not shown in
// the console, only in the history; notices are sentences when agentd knows them and one short
// line of JSON otherwise (both were raw JSON).
func TestBrowserConsoleNoticesAndSystemKeys(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved"}})
	u := newAgent(t, m, "xena", 2)
	tab := newTab(t, newBrowser(t))
	c, id := consoleChat(t, m, tab, u, "Carol")

	mustOK(t, c.do("update_userdata", map[string]any{"user_data": map[string]any{"CoBrowseSessionId": "CB-7"}}))
	waitFor(t, "agentd's own co-browse key", func() bool { return udValue(m, id, "_agentd.cobrowse.last") == `"CB-7"` })
	poll(t, tab, "co-browse write-back shown", `!!document.querySelector('#ud-`+id+` tr[data-key=CoBrowseSessionsQuantity]')`)
	if keys := eval[string](t, tab, `[...document.querySelectorAll('#ud-`+id+` tr[data-key]')].map(r => r.dataset.key).filter(k => k.startsWith('_agentd.')).join()`); keys != "" {
		t.Errorf("system keys shown to the agent: %s", keys)
	}
	notices := `[...document.querySelectorAll('#notices-` + id + ` li')].map(li => li.textContent)`
	poll(t, tab, "co-browse notice", notices+`.some(n => n.includes('Agent xena joined co-browse session CB-7.'))`)

	long := strings.Repeat("x", 300)
	mustOK(t, c.do("send_notice", map[string]any{"payload": map[string]any{"page": "/checkout", "cart": map[string]any{"items": 3}, "note": long}}))
	poll(t, tab, "customer's notice", `document.querySelectorAll('#notices-`+id+` li').length === 2`)
	got := eval[map[string]string](t, tab, `(c => ({text: c.textContent, title: c.title}))(document.querySelector('#notices-`+id+` li:last-child code'))`)
	if !strings.HasPrefix(got["text"], `{"cart":{"items":3},"note":"xxx`) || !strings.HasSuffix(got["text"], "…") || len([]rune(got["text"])) != 201 {
		t.Errorf("unknown notice shown as %q", got["text"])
	}
	if !strings.Contains(got["title"], long+`","page":"/checkout"}`) {
		t.Errorf("unknown notice's title %q", got["title"])
	}
	browse(t, tab, chromedp.SendKeys(chromedp.ID("notice-"+id), "Your order shipped"))
	click(t, tab, `#chat-`+id+` form[data-form=send_notice] button[type=submit]`)
	poll(t, tab, "own notice", notices+`.some(n => n.includes('Your order shipped'))`)
	if raw := eval[string](t, tab, notices+`.filter(n => n.includes('Your order shipped') || n.includes('CB-7')).join('\n')`); strings.Contains(raw, "{") {
		t.Errorf("known notices shown as JSON:\n%s", raw)
	}

	// The history keeps agentd's keys.
	click(t, tab, `#chat-`+id+` button[data-cmd=end]`)
	poll(t, tab, "wrap-up", `!!document.getElementById('disposition-`+id+`')`)
	browse(t, tab, chromedp.SetValue(chromedp.ID("disposition-"+id), "Resolved"))
	click(t, tab, `#chat-`+id+` form.wrapup button[type=submit]`)
	poll(t, tab, "recent chat", `!!document.querySelector('#recent a')`)
	browse(t, tab, chromedp.Navigate(m.URL()+"/console/history/"+id))
	poll(t, tab, "history with agentd's key", `document.getElementById('main').textContent.includes('_agentd.cobrowse.last')`)
}

// TestBrowserConsoleFocus: after Ready, Not ready, Delete, End chat and Done the focus is on a
// control that makes sense, not on the page's body (where it fell back to), so a keyboard user
// goes on from there.
func TestBrowserConsoleFocus(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	setStrategy(t, m, "default", agent.Strategy{Dispositions: []string{"Resolved"}})
	newAgent(t, m, "yan", 2)
	tab := newTab(t, newBrowser(t))
	consoleFor(t, tab, m.URL(), "yan")
	focused := func(what, css string) {
		t.Helper()
		poll(t, tab, "focus after "+what+" on "+css, `document.activeElement.matches(`+jsString(css)+`)`)
	}

	tabTo(t, tab, `#presence button[data-state=ready]`)
	press(t, tab, "\r")
	poll(t, tab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)
	focused("Ready", `#presence button[data-state=ready]`)
	tabTo(t, tab, `#presence button[data-state=not_ready]`)
	press(t, tab, "\r")
	poll(t, tab, "not ready", `document.getElementById('presence-state').textContent.trim().startsWith('Not ready')`)
	focused("Not ready", `#presence button[data-state=not_ready]`)
	tabTo(t, tab, `#presence button[data-state=ready]`)
	press(t, tab, "\r")
	poll(t, tab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)

	_, d := startSession(t, m, map[string]any{"username": "Carol", "user_data": map[string]any{"A": "1", "B": "2"}})
	id := d.str("session_id")
	poll(t, tab, "offer", `!!document.querySelector('#offer-`+id+` button[data-cmd=accept]')`)
	tabTo(t, tab, `#offer-`+id+` button[data-cmd=accept]`)
	press(t, tab, "\r")
	focused("Accept", "#message-"+id)

	tabTo(t, tab, `#ud-`+id+` button[data-cmd=delete_userdata][data-key=A]`)
	press(t, tab, "\r")
	poll(t, tab, "key deleted", `!document.querySelector('#ud-`+id+` tr[data-key=A]')`)
	focused("Delete", `#ud-`+id+` button[data-cmd=edit_userdata][data-key=B]`)

	tabTo(t, tab, `#chat-`+id+` button[data-cmd=end]`)
	press(t, tab, "\r")
	focused("End chat", "#disposition-"+id)
	press(t, tab, "R")
	tabTo(t, tab, `#chat-`+id+` form.wrapup button[type=submit]`)
	press(t, tab, "\r")
	poll(t, tab, "chat wrapped", `document.getElementById('chat-`+id+`') === null`)
	focused("Done", `#recent a`)
}

// fakeAlerts replaces Web Audio and desktop notifications with recorders: window.__chimes counts
// the sounds started, window.__permissionAsked the permission requests, window.__notifications
// holds the notifications shown. The page is never focused, as when the agent works elsewhere.
const fakeAlerts = `
window.__chimes = 0; window.__permissionAsked = 0; window.__notifications = [];
window.AudioContext = class {
	constructor() { this.currentTime = 0; this.state = 'running'; this.destination = {}; }
	resume() { return Promise.resolve(); }
	createGain() { return {gain: {setValueAtTime() {}, exponentialRampToValueAtTime() {}}, connect() {}}; }
	createOscillator() { return {frequency: {setValueAtTime() {}}, connect() {}, start() { window.__chimes++; }, stop() {}}; }
};
window.Notification = class {
	constructor(title, opts) { window.__notifications.push(title + ': ' + (opts && opts.body)); }
	close() {}
	static requestPermission() { window.__permissionAsked++; window.Notification.permission = 'granted'; return Promise.resolve('granted'); }
};
window.Notification.permission = 'default';
document.hasFocus = () => false;
`

// TestBrowserConsoleOfferAlerts: a new offer is announced in a live region, plays a sound (which
// the agent can turn off, remembered), badges the tab's title, and shows a desktop notification
// once the agent turned them on (never asked on load). Offers came in silently.
func TestBrowserConsoleOfferAlerts(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	u := newAgent(t, m, "zoe", 3)
	tab := newTab(t, newBrowser(t))
	onNewDocument(t, tab, fakeAlerts)
	consoleFor(t, tab, m.URL(), "zoe")
	ready(t, m, u)
	base := eval[string](t, tab, `document.title`)
	if n := eval[int](t, tab, `window.__permissionAsked`); n != 0 {
		t.Fatalf("the console asked for notifications %d times on load", n)
	}

	_, d := startSession(t, m, map[string]any{"username": "Carol"})
	id1 := d.str("session_id")
	poll(t, tab, "offer announced", `document.getElementById('offer-announcer')?.textContent.includes('Carol')`)
	if live := eval[string](t, tab, `document.getElementById('offer-announcer').getAttribute('aria-live')`); live != "assertive" {
		t.Errorf("announcer aria-live=%q", live)
	}
	if got := eval[string](t, tab, `document.title`); got != "(1) "+base {
		t.Errorf("title with one offer %q, want %q", got, "(1) "+base)
	}
	if n := eval[int](t, tab, `window.__chimes`); n != 1 {
		t.Errorf("%d sounds for one offer", n)
	}
	if n := eval[int](t, tab, `window.__notifications.length`); n != 0 {
		t.Errorf("%d desktop notifications before the agent turned them on", n)
	}

	// Sound off, remembered across a reload; desktop notifications on.
	click(t, tab, `#offer-sound`)
	browse(t, tab, chromedp.Reload())
	poll(t, tab, "console after reload", `document.getElementById('console-status')?.textContent === 'Connected.'`)
	if eval[bool](t, tab, `document.getElementById('offer-sound').checked`) {
		t.Error("the sound is on again after a reload")
	}
	if got := eval[string](t, tab, `document.title`); got != "(1) "+base {
		t.Errorf("title after reload %q", got)
	}
	click(t, tab, `#offer-notify`)
	poll(t, tab, "notifications on", `document.getElementById('offer-notify').getAttribute('aria-pressed') === 'true'`)
	if n := eval[int](t, tab, `window.__permissionAsked`); n != 1 {
		t.Errorf("permission asked %d times", n)
	}
	checkAxe(t, tab, "console with an offer and alerts on")

	_, d = startSession(t, m, map[string]any{"username": "Dan"})
	poll(t, tab, "second offer announced", `document.getElementById('offer-announcer').textContent.includes('Dan')`)
	poll(t, tab, "desktop notification", `window.__notifications.some(n => n.includes('Dan'))`)
	if got := eval[string](t, tab, `document.title`); got != "(2) "+base {
		t.Errorf("title with two offers %q", got)
	}
	if n := eval[int](t, tab, `window.__chimes`); n != 0 {
		t.Errorf("%d sounds with the sound turned off", n)
	}

	click(t, tab, `#offer-`+id1+` button[data-cmd=accept]`)
	poll(t, tab, "one offer left", `document.title === '(1) ' + `+jsString(base))
	// The second through the API: a click could land on the list while it is being redrawn.
	if _, err := m.Agents.Accept(context.Background(), u, d.str("session_id")); err != nil {
		t.Fatal(err)
	}
	poll(t, tab, "no offers left", `!document.querySelector('#offers .offer')`)
	if got := eval[string](t, tab, `document.title`); got != base {
		t.Errorf("title without offers %q, want %q", got, base)
	}
}

// linkChecks returns what is wrong with the message li in the list sel that holds "Second line":
// its http(s) URL must be the one link (new tab, noopener noreferrer), other text stays text, and
// its line breaks show.
const linkChecks = `((sel) => {
	const li = [...document.querySelectorAll(sel + ' li')].find(li => li.textContent.includes('Second line'));
	if (!li) return 'no message';
	const bad = [];
	const links = [...li.querySelectorAll('a')];
	if (links.length !== 1) bad.push(links.length + ' links');
	const a = links[0];
	if (a && (a.getAttribute('href') !== 'https://shop.example/orders/42?x=1' || a.textContent !== 'https://shop.example/orders/42?x=1' ||
		a.target !== '_blank' || a.rel !== 'noopener noreferrer')) bad.push('link ' + a.outerHTML);
	if (li.querySelector('b')) bad.push('markup rendered');
	if (!li.innerText.includes('x=1.\nSecond line\n')) bad.push('line breaks flattened: ' + JSON.stringify(li.innerText));
	return bad.join('; ');
})`

const linkMessage = "Look at https://shop.example/orders/42?x=1.\nSecond line\njavascript:alert(1) and <b>bold</b>"

// TestBrowserMessageLinks: URLs in messages are links and line breaks are kept, in the console and
// in the history (they were plain text, and flattened).
func TestBrowserMessageLinks(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t), func(c *Config) { c.Router.RouteInterval = 50 * time.Millisecond })
	u := newAgent(t, m, "abe", 2)
	tab := newTab(t, newBrowser(t))
	c, id := consoleChat(t, m, tab, u, "Carol")
	mustOK(t, c.do("send_message", map[string]any{"text": linkMessage}))
	poll(t, tab, "message", `document.getElementById('transcript-`+id+`').textContent.includes('Second line')`)
	if bad := eval[string](t, tab, linkChecks+`('#transcript-`+id+`')`); bad != "" {
		t.Errorf("console: %s", bad)
	}
	click(t, tab, `#chat-`+id+` button[data-cmd=end]`)
	poll(t, tab, "wrap-up", `!!document.getElementById('disposition-`+id+`')`)
	click(t, tab, `#chat-`+id+` form.wrapup button[type=submit]`)
	poll(t, tab, "wrapped", `document.getElementById('chat-`+id+`') === null`)
	browse(t, tab, chromedp.Navigate(m.URL()+"/console/history/"+id))
	poll(t, tab, "history", `document.getElementById('main')?.textContent.includes('Second line')`)
	if bad := eval[string](t, tab, linkChecks+`('#main ol')`); bad != "" {
		t.Errorf("history: %s", bad)
	}
}
