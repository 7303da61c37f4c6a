package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line of a plot: its points and how it is drawn without colour (a dash pattern
// and a marker shape tell the lines apart in print).
type Series struct {
	Name   string
	X, Y   []float64
	Dash   string // stroke-dasharray ("" is a solid line)
	Marker string // "circle" or "square"
}

// Plot is a line chart with a linear x axis and a logarithmic y axis (latencies span from
// milliseconds to seconds).
type Plot struct {
	Title, XLabel, YLabel string
	Series                []Series
	RefY                  float64 // a dotted horizontal line at this y (a target), 0 for none
	RefLabel              string
}

// The plot's geometry: the drawing area is [left, width-right] × [top, height-bottom].
const (
	plotW, plotH                  = 720, 440
	padL, padR, padTop, padBottom = 80, 30, 50, 60
)

// writeSVG writes p as a standalone SVG document (black on white, no script, no library).
func writeSVG(w io.Writer, p Plot) error {
	var xmax, ymin, ymax float64 = 0, math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: series %q has %d x and %d y", s.Name, len(s.X), len(s.Y))
		}
		for i := range s.X {
			xmax = max(xmax, s.X[i])
			if s.Y[i] > 0 {
				ymin, ymax = min(ymin, s.Y[i]), max(ymax, s.Y[i])
			}
		}
	}
	if p.RefY > 0 {
		ymin, ymax = min(ymin, p.RefY), max(ymax, p.RefY)
	}
	if xmax <= 0 || math.IsInf(ymin, 1) {
		return fmt.Errorf("plot: no point to draw")
	}
	xmax = niceCeil(xmax)
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if hi <= lo {
		hi = lo + 1
	}
	x0, x1 := float64(padL), float64(plotW-padR)
	y0, y1 := float64(plotH-padBottom), float64(padTop)
	px := func(x float64) float64 { return x0 + (x1-x0)*x/xmax }
	py := func(y float64) float64 { return y0 - (y0-y1)*(math.Log10(y)-lo)/(hi-lo) }

	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
<text x="%d" y="24" text-anchor="middle" font-size="15">%s</text>
`, plotW, plotH, plotW, plotH, plotW/2, esc(p.Title))
	// Axes, ticks and grid.
	fmt.Fprintf(&b, `<g stroke="black" fill="none"><line class="axis x" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line class="axis y" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>
`, x0, y0, x1, y0, x0, y0, x0, y1)
	for i := 0; i <= 5; i++ {
		v := xmax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>
`, px(v), y0, px(v), y0+5, px(v), y0+20, formatTick(v))
	}
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>
`, x0, py(v), x1, py(v), x0-8, py(v)+4, formatTick(v))
	}
	fmt.Fprintf(&b, `<text class="label x" x="%.1f" y="%d" text-anchor="middle">%s</text>
<text class="label y" x="20" y="%.1f" text-anchor="middle" transform="rotate(-90 20 %.1f)">%s</text>
`, (x0+x1)/2, plotH-15, esc(p.XLabel), (y0+y1)/2, (y0+y1)/2, esc(p.YLabel))
	if p.RefY > 0 {
		fmt.Fprintf(&b, `<g class="reference"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="1 3"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text></g>
`, x0, py(p.RefY), x1, py(p.RefY), x1-4, py(p.RefY)-5, esc(p.RefLabel))
	}
	// Series, and the legend (top left inside the area).
	for k, s := range p.Series {
		var pts []string
		for i := range s.X {
			if s.Y[i] > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[i]), py(s.Y[i])))
			}
		}
		dash := ""
		if s.Dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, esc(s.Dash))
		}
		fmt.Fprintf(&b, `<g class="series" data-name="%s"><polyline fill="none" stroke="black" stroke-width="1.5"%s points="%s"/>
`, esc(s.Name), dash, strings.Join(pts, " "))
		for _, pt := range pts {
			var x, y float64
			_, _ = fmt.Sscanf(pt, "%f,%f", &x, &y)
			b.WriteString(marker(s.Marker, x, y) + "\n")
		}
		ly := y1 + 16 + float64(k)*18
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="1.5"%s/>%s<text x="%.1f" y="%.1f">%s</text></g>
`, x0+12, ly, x0+42, ly, dash, marker(s.Marker, x0+27, ly), x0+50, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func marker(shape string, x, y float64) string {
	if shape == "square" {
		return fmt.Sprintf(`<rect class="point" x="%.1f" y="%.1f" width="7" height="7" fill="white" stroke="black"/>`, x-3.5, y-3.5)
	}
	return fmt.Sprintf(`<circle class="point" cx="%.1f" cy="%.1f" r="3.5" fill="black"/>`, x, y)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%g", v)
	}
}
