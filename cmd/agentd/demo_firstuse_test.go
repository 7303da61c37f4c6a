package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"agentd/userdata"
)

// TestBrowserDemoFirstUse: on the demo page URLs are links and line breaks stay, notices read as
// sentences (they were JSON under an empty "Notices" heading), the co-browse field is empty for
// the next id (it kept the last: CB-1234CB-9876), and when the chat ends the survey is a call to
// action (it was a bullet under "Notices").
func TestBrowserDemoFirstUse(t *testing.T) {
	t.Parallel()
	m := startNode(t, newDB(t))
	ctx := context.Background()
	b := newBrowser(t)
	browse(t, b,
		chromedp.Navigate(m.URL()+"/demo"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Dora"),
		chromedp.Click(chromedp.ID("start")),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	var id string
	waitFor(t, "interaction in Postgres", func() bool {
		_ = m.DB.Pool.QueryRow(ctx, `SELECT id FROM interactions WHERE customer_name = 'Dora'`).Scan(&id)
		return id != ""
	})
	if eval[bool](t, b, `document.getElementById('notices-heading').getClientRects().length > 0`) {
		t.Error(`an empty "Notices" section is shown`)
	}
	agent := agentJoin(t, m, id)
	if _, err := m.Chat.Send(ctx, agent, "", linkMessage, ""); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "agent message", `document.getElementById('transcript-list').textContent.includes('Second line')`)
	if bad := eval[string](t, b, linkChecks+`('#transcript-list')`); bad != "" {
		t.Errorf("demo transcript: %s", bad)
	}

	// Co-browse: each id shared from an empty field.
	for _, cb := range []string{"CB-1234", "CB-9876"} {
		browse(t, b, chromedp.SendKeys(chromedp.ID("cobrowse-id"), cb), chromedp.Click(chromedp.ID("cobrowse-share")))
		waitFor(t, cb+" in UserData", func() bool {
			v, ok, _ := m.Chat.CustomerUserData(ctx, id, "CoBrowseSessionId")
			return ok && string(v) == `"`+cb+`"`
		})
		poll(t, b, "co-browse field emptied", `document.getElementById('cobrowse-id').value === ''`)
	}

	// Notices: the co-browse notice as a sentence, an unknown one as a short line of JSON.
	if _, err := m.Chat.SendNotice(ctx, agent, "", []byte(`{"type":"cobrowse","event":"agent_joined","CoBrowseSessionId":"CB-9876"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Chat.SendNotice(ctx, agent, "", []byte(`{"kind":"cart","note":"`+strings.Repeat("y", 300)+`"}`)); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "notices", `document.querySelectorAll('#notices li').length === 2`)
	if got := eval[string](t, b, `document.querySelector('#notices li').textContent`); got != "Alice joined your co-browse session CB-9876." {
		t.Errorf("co-browse notice shown as %q", got)
	}
	got := eval[map[string]string](t, b, `(c => ({text: c.textContent, title: c.title}))(document.querySelector('#notices li:last-child code'))`)
	if len([]rune(got["text"])) != 201 || !strings.HasSuffix(got["text"], "…") || !strings.HasSuffix(got["title"], `yyy"}`) {
		t.Errorf("unknown notice shown as %q (title %q)", got["text"], got["title"])
	}
	if eval[bool](t, b, `document.getElementById('notices-heading').getClientRects().length === 0`) {
		t.Error("notices arrived and the Notices section is hidden")
	}

	// The survey: a call to action once the chat has ended.
	visible := true
	if _, err := m.Chat.ChangeUserData(ctx, agent, "", []userdata.Change{{Key: "SurveyURL", Value: "https://survey.example/s/1", Visible: &visible}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Chat.End(ctx, agent); err != nil {
		t.Fatal(err)
	}
	poll(t, b, "survey call to action", `(a => !!a && a.getClientRects().length > 0 && a.href === 'https://survey.example/s/1')(document.getElementById('survey-link'))`)
	if got := eval[string](t, b, `document.getElementById('survey-cta').innerText`); !strings.Contains(got, "How did we do?") || !strings.Contains(got, "Take the survey") {
		t.Errorf("survey call to action reads %q", got)
	}
	if n := eval[int](t, b, `[...document.querySelectorAll('#notices li')].filter(li => li.textContent.includes('survey')).length`); n != 0 {
		t.Errorf("the survey is also a notice bullet (%d)", n)
	}
	screenshot(t, b, "demo-ended.png")
	checkAxe(t, b, "demo page after the chat ended")
}
