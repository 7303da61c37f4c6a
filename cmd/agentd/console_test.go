package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"agentd/agent"
	"agentd/chat"
	"agentd/userdata"
)

// newTab opens a tab in its own browser context (separate cookies), as a second person would.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	t.Cleanup(cancel)
	return ctx
}

func signIn(t *testing.T, tab context.Context, base, username, password string) {
	t.Helper()
	browse(t, tab,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
}

// consoleFor signs username in on tab (password "password-" + username, as newAgent sets it) and
// waits until its console is connected.
func consoleFor(t *testing.T, tab context.Context, base, username string) {
	t.Helper()
	signIn(t, tab, base, username, "password-"+username)
	poll(t, tab, "console of "+username, `document.getElementById('console-status')?.textContent === 'Connected.'`)
}

// click clicks the element css selects. The console redraws live: when the element found was
// replaced before the click reached it (Chromium: "Could not find node with given id"), it
// clicks the new one, as a person would, a few times at most.
func click(t *testing.T, tab context.Context, css string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(css)), chromedp.Click(chromedp.CSS(css)))
		cancel()
		if err == nil {
			return
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Could not find node with given id") {
			t.Fatalf("browser: click %s: %v", css, err)
		}
	}
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestBrowserConsole is the whole agent flow in headless Chromium: a customer page on another
// origin and an agent in /console, each in its own browser context.
func TestBrowserConsole(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	addr := freeAddr(t)
	site := sitePages(t, "http://"+addr, map[string]string{"/shop": seedFlow})
	m := startNode(t, db, func(c *Config) {
		c.Addr = addr
		c.allowedOrigins = site.URL
		c.Agent.CoBrowseURL = "https://cobrowse.example/join?s={CoBrowseSessionId}&i={interactionId}"
		c.Router.RouteInterval = 100 * time.Millisecond
	})
	ctx := context.Background()
	setStrategy(t, m, "default", agent.Strategy{
		WelcomeNotice: "Welcome!", Dispositions: []string{"Resolved", "Escalated"}, DispositionRequired: true,
		Survey: &agent.Survey{When: "ended"},
	})
	alice := newAgent(t, m, "alice", 3)
	bob := newAgent(t, m, "bob", 3)

	browser := newBrowser(t)
	agentTab := newTab(t, browser)
	customer := newTab(t, browser)

	// Sign in (a wrong password first), go Ready.
	signIn(t, agentTab, m.URL(), "alice", "wrong-password")
	poll(t, agentTab, "sign-in error", `document.getElementById('login-error')?.textContent.includes('Wrong username or password')`)
	consoleFor(t, agentTab, m.URL(), "alice")
	click(t, agentTab, `#presence button[data-state=ready]`)
	poll(t, agentTab, "ready", `document.getElementById('presence-state').textContent.trim() === 'Ready'`)

	// The customer starts a chat; the agent gets an offer with a countdown and accepts it.
	browse(t, customer, chromedp.Navigate(site.URL+"/shop"))
	poll(t, customer, "customer session", `window.ready === true`)
	id := eval[string](t, customer, `window.session.sessionId`)
	poll(t, agentTab, "offer", `document.querySelector('#offers .offer .countdown')?.textContent.startsWith('Accept within')`)
	click(t, agentTab, `#offers button[data-cmd=accept]`)
	poll(t, customer, "agent connected", `window.log.some(l => l.kind === 'agentConnected' && l.e.party.name === 'Agent alice')`)
	poll(t, agentTab, "chat panel", `(p => !!p && !p.hidden)(document.getElementById('chat-`+id+`'))`)

	// Chat both ways, with typing, and a hostile message shown as text.
	eval[bool](t, customer, `new Promise(r => window.session.sendMessage('<img src=x onerror="window.pwned=1">Hello agent').done(() => r(true)))`)
	poll(t, agentTab, "customer message", `document.getElementById('transcript-`+id+`')?.textContent.includes('<img src=x onerror="window.pwned=1">Hello agent')`)
	if eval[bool](t, agentTab, `window.pwned === 1 || document.querySelector('#transcript-`+id+` img') !== null`) {
		t.Fatal("customer message rendered as HTML in the console")
	}
	eval[bool](t, customer, `new Promise(r => window.session.sendTyping({isTyping: true, typedText: 'I need he'}).done(() => r(true)))`)
	poll(t, agentTab, "customer typing preview", `document.getElementById('typing-`+id+`')?.textContent.includes('I need he')`)
	browse(t, agentTab, chromedp.SendKeys(chromedp.ID("message-"+id), "Hi Carol, how can I help?"))
	poll(t, customer, "agent typing", `window.log.some(l => l.kind === "typing" && l.e.isTyping)`)
	// A double click sends once. The absence of a second copy is checked once a later message has
	// arrived: the console runs commands in order and the transcript keeps that order, so a copy
	// sent by the second click would have reached the customer before it.
	send := `#chat-` + id + ` .composer button[type=submit]`
	browse(t, agentTab, chromedp.DoubleClick(chromedp.CSS(send)))
	poll(t, customer, "agent message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'Hi Carol, how can I help?')`)
	browse(t, agentTab, chromedp.SendKeys(chromedp.ID("message-"+id), "Anything else?"), chromedp.Click(chromedp.CSS(send)))
	poll(t, customer, "the next agent message", `window.log.some(l => l.kind === 'message' && l.e.content.text === 'Anything else?')`)
	if n := eval[int](t, customer, `window.log.filter(l => l.kind === 'message' && l.e.content.text === 'Hi Carol, how can I help?').length`); n != 1 {
		t.Fatalf("double click sent %d messages", n)
	}

	// UserData edited on each side appears live on the other.
	eval[bool](t, customer, `new Promise(r => window.session.updateUserData({LastName: 'Doe'}).done(() => r(true)))`)
	poll(t, agentTab, "customer's key in the panel", `document.querySelector('#ud-`+id+` tr[data-key="LastName"] .value')?.textContent === 'Doe'`)
	browse(t, agentTab,
		chromedp.SendKeys(chromedp.ID("ud-key-"+id), "Tier"),
		chromedp.SendKeys(chromedp.ID("ud-value-"+id), "Gold"),
		chromedp.Click(chromedp.ID("ud-visible-"+id)),
		chromedp.Click(chromedp.CSS(`#chat-`+id+` .ud-form button[type=submit]`)),
	)
	poll(t, customer, "agent's visible key", `window.log.some(l => l.kind === 'userdata' && l.e.userData.Tier === 'Gold')`)
	screenshot(t, agentTab, "console.png")
	checkLabels(t, agentTab, "console")
	checkAxe(t, agentTab, "console with a chat")

	// Co-browse opens by itself when the customer shares a session id; the agent side writes back.
	eval[bool](t, customer, `new Promise(r => window.session.updateUserData({CoBrowseSessionId: 'CB-42'}).done(() => r(true)))`)
	poll(t, agentTab, "co-browse panel", `document.querySelector('#cobrowse-`+id+` iframe.cobrowse-frame')?.src.includes('s=CB-42')`)
	poll(t, customer, "co-browse notice", `window.log.some(l => l.kind === 'notice' && l.e.payload.event === 'agent_joined')`)
	waitFor(t, "co-browse write-back", func() bool {
		return udValue(m, id, userdata.KeyCoBrowseSessionsQuantity) == "1" && udValue(m, id, userdata.KeyCoBrowseAssociated) == "true" &&
			udValue(m, id, userdata.KeyCoBrowseStartTime) != ""
	})
	eval[bool](t, customer, `new Promise(r => window.session.updateUserData({CoBrowseSessionId: 'CB-43'}).done(() => r(true)))`)
	waitFor(t, "second co-browse session", func() bool { return udValue(m, id, userdata.KeyCoBrowseSessionsQuantity) == "2" })

	// Transfer to Bob (ready) through the console; Bob hands it back through the Go API.
	ready(t, m, bob)
	browse(t, agentTab, chromedp.Reload())
	poll(t, agentTab, "console after reload", `document.getElementById('console-status')?.textContent === 'Connected.' && !!document.querySelector('#transfer-`+id+` option[value="agent:`+strconv.FormatInt(bob.ID, 10)+`"]')`)
	browse(t, agentTab, chromedp.SetValue(chromedp.ID("transfer-"+id), "agent:"+strconv.FormatInt(bob.ID, 10)))
	click(t, agentTab, `#chat-`+id+` form.transfer button[type=submit]`)
	waitOffer(t, m, bob, id)
	poll(t, agentTab, "panel gone after transfer", `document.getElementById('chat-`+id+`') === null`)
	if _, err := m.Agents.Accept(ctx, bob, id); err != nil {
		t.Fatal(err)
	}
	aliceNow, _ := m.Accounts.User(ctx, alice.ID)
	if err := m.Agents.Transfer(ctx, bob, id, agent.TransferTarget{UserID: aliceNow.ID}); err != nil {
		t.Fatal(err)
	}
	click(t, agentTab, `#offers button[data-cmd=accept]`)
	poll(t, agentTab, "chat back with its history", `document.getElementById('transcript-`+id+`')?.textContent.includes('Hello agent')`)

	// End, then wrap up: the disposition is mandatory.
	click(t, agentTab, `#chat-`+id+` button[data-cmd=end]`)
	poll(t, customer, "session ended", `window.log.some(l => l.kind === 'ended' && l.e.reason.agent)`)
	poll(t, agentTab, "wrap-up form", `!!document.getElementById('disposition-`+id+`')`)
	checkAxe(t, agentTab, "console with an ended chat")
	eval[bool](t, agentTab, `document.getElementById('disposition-`+id+`').required = false, true`) // get past the browser's own check
	click(t, agentTab, `#chat-`+id+` form.wrapup button[type=submit]`)
	poll(t, agentTab, "mandatory disposition", `document.getElementById('console-status').textContent.includes('Choose a disposition')`)
	browse(t, agentTab,
		chromedp.SetValue(chromedp.ID("disposition-"+id), "Resolved"),
		chromedp.SendKeys(chromedp.ID("notes-"+id), "Sorted out the billing question."),
	)
	click(t, agentTab, `#chat-`+id+` form.wrapup button[type=submit]`)
	poll(t, agentTab, "chat wrapped", `document.getElementById('chat-`+id+`') === null`)
	in, _ := m.Chat.Interaction(ctx, id)
	if in.State != chat.StateWrapped {
		t.Fatalf("state after wrap-up: %s", in.State)
	}
	if v, _, _ := m.Chat.CustomerUserData(ctx, id, "Disposition"); v != nil {
		t.Fatal("Disposition must not be visible to the customer")
	}
	if disp := udValue(m, id, "Disposition"); disp != `"Resolved"` {
		t.Fatalf("Disposition UserData = %s", disp)
	}

	// The customer reads SurveyURL after the end and answers the survey.
	surveyURL := eval[string](t, customer, `new Promise(r => window.session.getUserData('SurveyURL').done(e => r(e.userData.SurveyURL || '')))`)
	if !strings.HasPrefix(surveyURL, m.URL()+"/survey/") {
		t.Fatalf("SurveyURL = %q", surveyURL)
	}
	browse(t, customer, chromedp.Navigate(surveyURL))
	checkLabels(t, customer, "survey page")
	checkAxe(t, customer, "survey page")
	browse(t, customer,
		chromedp.WaitVisible(chromedp.CSS(`input[name="q.CSAT"][value="5"]`)),
		chromedp.Click(chromedp.CSS(`input[name="q.CSAT"][value="5"]`)),
		chromedp.SendKeys(chromedp.ID("q-Comment"), "Quick and <b>friendly</b>"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	poll(t, customer, "thanks", `document.getElementById('survey-thanks') !== null`)
	browse(t, customer, chromedp.Navigate(surveyURL))
	poll(t, customer, "answered once", `document.getElementById('survey-answered') !== null`)

	// The answers are visible to the agent in the history of that chat.
	browse(t, agentTab, chromedp.Navigate(m.URL()+"/console"))
	poll(t, agentTab, "recent chat with CSAT", `document.querySelector('#recent .csat')?.textContent === 'CSAT 5'`)
	// History opens in a new tab, so the console stays in view; the test follows the link here.
	if got := eval[string](t, agentTab, `(a => a.target + ' ' + a.rel)(document.querySelector('#recent a'))`); got != "_blank noopener" {
		t.Fatalf("history link opens with target and rel %q", got)
	}
	browse(t, agentTab, chromedp.Navigate(eval[string](t, agentTab, `document.querySelector('#recent a').href`)))
	poll(t, agentTab, "history page", `document.getElementById('survey-answers')?.textContent.includes('Quick and <b>friendly</b>')`)
	checkLabels(t, agentTab, "history")
	checkAxe(t, agentTab, "history page")
	if got := eval[string](t, agentTab, `document.getElementById('history-disposition').textContent`); got != "Resolved" {
		t.Fatalf("history disposition %q", got)
	}
}

// udValue returns the JSON value of a UserData key as the agent side sees it, "" when absent.
func udValue(m *Main, interactionID, key string) string {
	ud, _ := m.Chat.UserData(context.Background(), interactionID)
	for _, e := range ud {
		if e.Key == key {
			return string(e.Value)
		}
	}
	return ""
}

// screenshot saves a PNG of the tab into $AGENTD_SCREENSHOTS (used to refresh docs/screenshots).
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	saveShot(t, tab, name, chromedp.FullScreenshot(100))
}

// screenshotView is screenshot of what the window shows, for pages too tall to show whole.
func screenshotView(t *testing.T, tab context.Context, name string) {
	t.Helper()
	saveShot(t, tab, name, chromedp.CaptureScreenshot())
}

func saveShot(t *testing.T, tab context.Context, name string, take chromedp.Action[[]byte]) {
	t.Helper()
	dir := os.Getenv("AGENTD_SCREENSHOTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(tab, take)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}
