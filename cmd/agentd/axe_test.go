package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axe-core (testdata/axe, pinned; see its README) checks every page the browser tests visit. It
// is evaluated in the page by the test only: agentd never serves it.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("testdata/axe/axe.min.js")
	return string(b), err
})

// axeViolation is what axe.run reports for one rule a page breaks.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAxe runs axe-core on the page in tab and fails the test with every violation it finds:
// the rule, its impact and the elements (their CSS targets) that break it. page names the page
// in the message. Frames are not entered (the co-browse frame is the provider's page).
func checkAxe(t *testing.T, tab context.Context, page string) {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("if (!window.axe) { "+src+"\n}")); err != nil {
		t.Fatalf("%s: load axe-core: %v", page, err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {iframes: false, resultTypes: ['violations']})
		.then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", page, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("%s: axe result: %v", page, err)
	}
	if len(vs) == 0 {
		return
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("\n- " + v.ID + " (" + v.Impact + "): " + v.Help)
		for _, n := range v.Nodes {
			target, _ := json.Marshal(n.Target)
			b.WriteString("\n    " + string(target) + ": " + strings.ReplaceAll(n.Summary, "\n", " "))
		}
	}
	t.Fatalf("%s: axe-core found %d violation(s):%s", page, len(vs), b.String())
}
