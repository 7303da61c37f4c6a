package supervisor

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"agentd/agent"
	"agentd/web/templates"
)

func render(t *testing.T, c interface {
	Render(context.Context, io.Writer) error
}) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// svgOf parses a rendered chart as XML (failing when it is not well-formed) and returns its
// <title> and the texts of its value labels, in order.
func svgOf(t *testing.T, page string) (title string, values []string) {
	t.Helper()
	start := strings.Index(page, "<svg")
	end := strings.Index(page, "</svg>")
	if start < 0 || end < start {
		t.Fatalf("no svg in %s", page)
	}
	dec := xml.NewDecoder(strings.NewReader(page[start : end+len("</svg>")]))
	var stack []xml.StartElement
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %v\n%s", err, page)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			top := stack[len(stack)-1]
			switch {
			case top.Name.Local == "title":
				title += string(el)
			case top.Name.Local == "text" && attr(top, "class") == "value":
				values = append(values, string(el))
			}
		}
	}
	return title, values
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func dur(d time.Duration) *time.Duration { return &d }

// TestChartsEmptyAndFull: every chart of a window renders as well-formed SVG with its title and
// an aria-labelledby naming its title and description, whether no chat arrived (then it says so
// and has no bars) or some did (then each bar's label is exactly the value in the same column of
// the table alternative, period by period).
func TestChartsEmptyAndFull(t *testing.T) {
	start := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	empty := make([]agent.Figures, 24)
	for i := range empty {
		empty[i].Start = start.Add(time.Duration(i) * time.Hour)
	}
	ev := windowView(dayWindow, empty, nil)
	if len(ev.Charts) != 6 || len(ev.Rows) != 24 {
		t.Fatalf("empty window: %d charts, %d rows", len(ev.Charts), len(ev.Rows))
	}
	for _, c := range append(ev.Charts, ev.Dispositions) {
		page := render(t, templates.ChartSVG(c))
		title, values := svgOf(t, page)
		if c.ID == "chart-day-volume" {
			// No chat is data: 24 bars of no height, each labelled 0.
			if title != c.Title || len(values) != 24 || values[0] != "0" || values[23] != "0" || len(c.Bars) != 24 || c.Bars[5].H != 0 {
				t.Fatalf("empty volume chart: title %q, values %v:\n%s", title, values, page)
			}
			continue
		}
		if title != c.Title || len(values) != 0 || !strings.Contains(page, "No d") {
			t.Fatalf("empty chart %s: title %q, values %v:\n%s", c.ID, title, values, page)
		}
		if !strings.Contains(page, `aria-labelledby="`+c.ID+`-title `+c.ID+`-desc"`) || !strings.Contains(page, `role="img"`) {
			t.Fatalf("chart %s is not labelled: %s", c.ID, page)
		}
	}
	if r := ev.Rows[0]; r.Chats != "0" || r.AvgWait != noData || r.Abandonment != noData || r.AvgCSAT != noData {
		t.Fatalf("empty row: %+v", r)
	}

	full := make([]agent.Figures, 7)
	for i := range full {
		full[i].Start = start.AddDate(0, 0, i)
	}
	c45 := 4.5
	full[2] = agent.Figures{Start: full[2].Start, Chats: 4, Answered: 3, Abandoned: 1, AvgWait: dur(65 * time.Second),
		P90Wait: dur(3 * time.Minute), AvgHandle: dur(2*time.Hour + 3*time.Minute), Rated: 2, AvgCSAT: &c45}
	full[5] = agent.Figures{Start: full[5].Start, Chats: 1, Answered: 1, AvgWait: dur(5 * time.Second), P90Wait: dur(5 * time.Second),
		AvgHandle: dur(10 * time.Minute)}
	disps := []agent.DispositionCount{{Disposition: "Resolved <b>", Count: 3}, {Disposition: "Escalated", Count: 1}}
	fv := windowView(weekWindow, full, disps)
	page := render(t, templates.DashCharts([]templates.DashWindow{fv}))
	want := map[string][]string{
		"chart-week-volume":       {"0", "0", "4", "0", "0", "1", "0"},
		"chart-week-wait":         {"1m 05s", "5s"},
		"chart-week-p90":          {"3m 00s", "5s"},
		"chart-week-handle":       {"2h 03m", "10m 00s"},
		"chart-week-abandonment":  {"25%", "0%"},
		"chart-week-csat":         {"4.5"},
		"chart-week-dispositions": {"3", "1"},
	}
	for _, c := range append(fv.Charts, fv.Dispositions) {
		title, values := svgOf(t, render(t, templates.ChartSVG(c)))
		if title != c.Title || strings.Join(values, "|") != strings.Join(want[c.ID], "|") {
			t.Fatalf("chart %s: title %q (want %q), values %v (want %v)", c.ID, title, c.Title, values, want[c.ID])
		}
	}
	// The table alternative: the same strings, in the columns of the charts.
	rows := regexp.MustCompile(`(?s)<tr><th scope="row">([^<]*)</th>(.*?)</tr>`).FindAllStringSubmatch(page, -1)
	if len(rows) != 7+2 {
		t.Fatalf("table rows: %d, want 9:\n%s", len(rows), page)
	}
	cells := func(s string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<td>([^<]*)</td>`).FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	if got := cells(rows[2][2]); rows[2][1] != "Fri Mar 6" || strings.Join(got, "|") != "4|3|1|25%|1m 05s|3m 00s|2h 03m|4.5" {
		t.Fatalf("row of day 3: %s %v", rows[2][1], got)
	}
	if got := cells(rows[5][2]); strings.Join(got, "|") != "1|1|0|0%|5s|5s|10m 00s|–" {
		t.Fatalf("row of day 6: %v", got)
	}
	if rows[7][1] != "Resolved &lt;b&gt;" || cells(rows[7][2])[0] != "3" || rows[8][1] != "Escalated" {
		t.Fatalf("disposition rows: %q %q", rows[7][1], rows[8][1])
	}
}

// TestDurationText: the dashboard's one duration format (supervisor.js has the same).
func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 0: "0s", 59 * time.Second: "59s", time.Minute: "1m 00s",
		65 * time.Second: "1m 05s", time.Hour + 59*time.Second: "1h 00m", 25*time.Hour + 30*time.Minute: "1d 01h"} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v) = %q, want %q", d, got, want)
		}
	}
}
