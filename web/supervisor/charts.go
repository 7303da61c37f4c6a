package supervisor

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"agentd/agent"
	"agentd/web/templates"
)

// The geometry of the dashboard's SVG bar charts (viewBox units; the SVG scales to its box).
const (
	chartWidth  = 960
	chartHeight = 170
	chartLeft   = 10
	chartRight  = 10
	chartTop    = 30 // room for the value labels above the tallest bar
	chartBottom = 28 // room for the labels under the axis
	// maxDispositionBars bounds the bars of a dispositions chart; its table lists all.
	maxDispositionBars = 12
)

// chartPoint is one bar of a chart: its value (NaN: no data in the period), the value's text,
// and its label under the axis ("" to leave a period unlabelled).
type chartPoint struct {
	value float64
	text  string
	label string
}

// barChart lays out points as bars scaled to the largest value (zero values get a bar of no
// height, labelled 0). A chart none of whose points has data is drawn empty, with the empty text.
func barChart(id, title, desc string, points []chartPoint, empty string) templates.Chart {
	c := templates.Chart{ID: id, Title: title, Desc: desc, Width: chartWidth, Height: chartHeight, BaseY: chartHeight - chartBottom}
	top, some := 0.0, false
	for _, p := range points {
		if !math.IsNaN(p.value) {
			some = true
			top = max(top, p.value)
		}
	}
	if !some {
		c.Empty = empty
		return c
	}
	if top == 0 {
		top = 1
	}
	band := (chartWidth - chartLeft - chartRight) / len(points)
	plot := float64(c.BaseY - chartTop)
	for i, p := range points {
		x := chartLeft + i*band
		if p.label != "" {
			c.Ticks = append(c.Ticks, templates.ChartTick{X: x + band/2, Y: chartHeight - 8, Text: p.label})
		}
		if math.IsNaN(p.value) {
			continue
		}
		h := int(math.Round(p.value / top * plot))
		if p.value > 0 && h < 1 {
			h = 1
		}
		w := band * 3 / 4
		c.Bars = append(c.Bars, templates.ChartBar{X: x + (band-w)/2, Y: c.BaseY - h, W: w, H: h,
			Value: p.text, ValueX: x + band/2, ValueY: c.BaseY - h - 5})
	}
	return c
}

// window is one chart window: its periods and how they are named.
type window struct {
	id, title, per, periodLabel string // "day", "Last 24 hours", "hour", "Hour"
	label                       func(t time.Time, i int) string
	period                      func(t time.Time) string
}

var (
	dayWindow = window{id: "day", title: "Last 24 hours", per: "hour", periodLabel: "Hour (UTC)",
		label: func(t time.Time, i int) string {
			if i%3 != 0 {
				return ""
			}
			return t.UTC().Format("15:04")
		},
		period: func(t time.Time) string {
			return t.UTC().Format("Jan 2 15:04") + "–" + t.UTC().Add(time.Hour).Format("15:04")
		}}
	weekWindow = window{id: "week", title: "Last 7 days", per: "day", periodLabel: "Day (UTC)",
		label:  func(t time.Time, _ int) string { return t.UTC().Format("Mon Jan 2") },
		period: func(t time.Time) string { return t.UTC().Format("Mon Jan 2") }}
)

// durationText is how the dashboard writes a duration, in its tables, chart labels and tickers
// alike (supervisor.js writes the same): 45s, 3m 05s, 2h 03m, 3d 04h.
func durationText(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %02dh", s/86400, s%86400/3600)
}

// noData is what a table cell and a chart say of a figure that has no value in a period.
const noData = "–"

func optDuration(d *time.Duration) (float64, string) {
	if d == nil {
		return math.NaN(), noData
	}
	return d.Seconds(), durationText(*d)
}

func abandonment(f agent.Figures) (float64, string) {
	if f.Chats == 0 {
		return math.NaN(), noData
	}
	r := float64(f.Abandoned) / float64(f.Chats) * 100
	return r, strconv.FormatFloat(r, 'f', 0, 64) + "%"
}

func csat(f agent.Figures) (float64, string) {
	if f.AvgCSAT == nil {
		return math.NaN(), noData
	}
	return *f.AvgCSAT, strconv.FormatFloat(*f.AvgCSAT, 'f', 1, 64)
}

// windowView renders one window's charts and its table alternative from the same figures, so
// the chart labels and the table cells are the same strings.
func windowView(w window, figs []agent.Figures, disps []agent.DispositionCount) templates.DashWindow {
	v := templates.DashWindow{ID: w.id, Title: w.title, PeriodLabel: w.periodLabel}
	type series struct {
		key, name string
		point     func(agent.Figures) (float64, string)
	}
	all := []series{
		{"volume", "Chat volume", func(f agent.Figures) (float64, string) { return float64(f.Chats), strconv.Itoa(f.Chats) }},
		{"wait", "Average wait", func(f agent.Figures) (float64, string) { return optDuration(f.AvgWait) }},
		{"p90", "p90 wait", func(f agent.Figures) (float64, string) { return optDuration(f.P90Wait) }},
		{"handle", "Average handle time", func(f agent.Figures) (float64, string) { return optDuration(f.AvgHandle) }},
		{"abandonment", "Abandonment", abandonment},
		{"csat", "Average CSAT", csat},
	}
	for _, s := range all {
		points := make([]chartPoint, len(figs))
		top, topAt := math.NaN(), ""
		for i, f := range figs {
			val, text := s.point(f)
			points[i] = chartPoint{value: val, text: text, label: w.label(f.Start, i)}
			if !math.IsNaN(val) && (math.IsNaN(top) || val > top) {
				top, topAt = val, text+" in "+w.period(f.Start)
			}
		}
		title := s.name + ", " + lowerFirst(w.title)
		desc := fmt.Sprintf("Bar chart, one bar per %s; each bar is labelled with its value. ", w.per)
		if topAt == "" {
			desc += "No data in this period."
		} else {
			desc += "Highest: " + topAt + ". The table “" + w.title + "” below has every value."
		}
		v.Charts = append(v.Charts, barChart("chart-"+w.id+"-"+s.key, title, desc, points, "No data in this period."))
	}
	for _, f := range figs {
		_, ab := abandonment(f)
		_, wait := optDuration(f.AvgWait)
		_, p90 := optDuration(f.P90Wait)
		_, handle := optDuration(f.AvgHandle)
		_, cs := csat(f)
		v.Rows = append(v.Rows, templates.DashFigureRow{Period: w.period(f.Start), Chats: strconv.Itoa(f.Chats), Answered: strconv.Itoa(f.Answered),
			Abandoned: strconv.Itoa(f.Abandoned), Abandonment: ab, AvgWait: wait, P90Wait: p90, AvgHandle: handle, AvgCSAT: cs})
	}
	var points []chartPoint
	for i, d := range disps {
		v.DispositionRows = append(v.DispositionRows, templates.DashDispositionRow{Disposition: d.Disposition, Count: strconv.Itoa(d.Count)})
		if i < maxDispositionBars {
			points = append(points, chartPoint{value: float64(d.Count), text: strconv.Itoa(d.Count), label: shorten(d.Disposition, 14)})
		}
	}
	desc := "Bar chart, one bar per disposition, most frequent first; each bar is labelled with its count. "
	if len(disps) == 0 {
		desc += "No chat was wrapped up with a disposition in this period."
	} else {
		desc += fmt.Sprintf("Most frequent: %s (%d). The dispositions table below has every count.", disps[0].Disposition, disps[0].Count)
	}
	v.Dispositions = barChart("chart-"+w.id+"-dispositions", "Dispositions, "+lowerFirst(w.title), desc, points,
		"No dispositions in this period.")
	return v
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}

// shorten cuts s to n characters with an ellipsis (a chart label; the table has it whole).
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
