package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseFdatasync(t *testing.T) {
	out := `Compare file sync methods using one 8kB write:
(in wal_sync_method preference order, except fdatasync is Linux's default)
        open_datasync                      6912.345 ops/sec     145 usecs/op
        fdatasync                          7160.123 ops/sec     140 usecs/op
        fsync                              5000.000 ops/sec     200 usecs/op
`
	var got []float64
	for _, line := range strings.Split(out, "\n") {
		if r, us, ok := parseFdatasync(line); ok {
			got = append(got, r)
			if us != 140 {
				t.Errorf("usecs = %d, want 140", us)
			}
		}
	}
	if len(got) != 1 || got[0] != 7160.123 {
		t.Fatalf("parsed %v, want only the fdatasync line's 7160.123", got)
	}
	if _, _, ok := parseFdatasync("        fdatasync                                     n/a"); ok {
		t.Error("an n/a line parsed as a rate")
	}
}

func TestModel(t *testing.T) {
	ins := Ceiling{Rate: 50000, CPUPerOp: 0.00002}  // 0.02 ms a row
	echo := Ceiling{Rate: 40000, CPUPerOp: 0.00005} // 0.05 ms a round trip
	fan := Ceiling{Rate: 20000, CPUPerOp: 0.00008}  // 0.08 ms a fan-out
	m := newModel(2, ins, echo, fan)
	if math.Abs(m.CPUPerMsg-0.00015) > 1e-12 {
		t.Fatalf("CPU per message %g, want 0.15 ms (the parts added)", m.CPUPerMsg)
	}
	want := 2 / 0.00015 // 13,333/s: below every part's own rate, so the CPU share binds
	if math.Abs(m.CPUBound-want) > 1e-6 || math.Abs(m.Ceiling-want) > 1e-6 {
		t.Fatalf("bound %g, ceiling %g, want both %g", m.CPUBound, m.Ceiling, want)
	}
	if p := m.Percent(want / 4); math.Abs(p-25) > 1e-9 {
		t.Fatalf("percent %g, want 25", p)
	}
	// A part bound by something else than CPU (a disk that flushes 1,000 times a second) binds.
	slow := Ceiling{Rate: 1000, CPUPerOp: 0.00002}
	if m := newModel(2, slow, echo, fan); m.Ceiling != 1000 {
		t.Fatalf("ceiling %g, want the slow part's 1000", m.Ceiling)
	}
	// A failed part gives no ceiling (and no percentage), rather than a made-up one.
	if m := newModel(2, Ceiling{}, echo, fan); m.Ceiling != 0 || m.Percent(100) != 0 {
		t.Fatalf("ceiling %g from a failed part", m.Ceiling)
	}
}

func TestWriteSVG(t *testing.T) {
	p := Plot{Title: "Delivery latency & load", XLabel: "offered messages/s", YLabel: "delivery latency (ms)", Series: []Series{
		{Name: "p50", X: []float64{480, 960, 1440}, Y: []float64{6.6, 15.2, 94}, Marker: "circle"},
		{Name: "p99", X: []float64{480, 960, 1440}, Y: []float64{35, 82, 959}, Dash: "6 4", Marker: "square"},
	}, RefY: 50, RefLabel: "target p99 50 ms"}
	var buf bytes.Buffer
	if err := writeSVG(&buf, p); err != nil {
		t.Fatal(err)
	}
	// Well-formed: the whole document decodes token by token.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var texts []string
	var points [][2]float64
	var dashed, root bool
	var inText bool
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
		}
		switch e := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range e.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch e.Name.Local {
			case "svg":
				root = e.Name.Space == "http://www.w3.org/2000/svg"
			case "text":
				inText = true
			case "polyline":
				if attr["stroke-dasharray"] != "" {
					dashed = true
				}
			case "circle":
				x, _ := strconv.ParseFloat(attr["cx"], 64)
				y, _ := strconv.ParseFloat(attr["cy"], 64)
				points = append(points, [2]float64{x, y})
			case "rect":
				if attr["class"] == "point" {
					x, _ := strconv.ParseFloat(attr["x"], 64)
					y, _ := strconv.ParseFloat(attr["y"], 64)
					points = append(points, [2]float64{x + 3.5, y + 3.5})
				}
			}
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		}
	}
	if !root {
		t.Error("no svg root in the SVG namespace")
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"offered messages/s", "delivery latency (ms)", "Delivery latency & load", "p50", "p99", "target p99 50 ms", "1", "10", "100", "1k"} {
		if !strings.Contains("|"+all+"|", "|"+want+"|") {
			t.Errorf("no text %q in %q", want, all)
		}
	}
	if !dashed {
		t.Error("the series are not told apart by a dash pattern")
	}
	// 6 data points and 2 legend markers, every one inside the drawing area.
	if len(points) != 8 {
		t.Fatalf("%d markers, want 8", len(points))
	}
	for _, pt := range points {
		if pt[0] < padL || pt[0] > plotW-padR || pt[1] < padTop || pt[1] > plotH-padBottom {
			t.Errorf("marker at %v outside the area [%d,%d]×[%d,%d]", pt, padL, plotW-padR, padTop, plotH-padBottom)
		}
	}
	// The largest x is on or left of the axis' end; a higher latency is drawn higher (smaller y).
	// Markers come series by series, each followed by its legend marker: p50 is 0-2, p99 4-6.
	p99 := points[4:7]
	if !(p99[0][0] < p99[1][0] && p99[1][0] < p99[2][0]) || !(p99[2][1] < p99[1][1] && p99[1][1] < p99[0][1]) {
		t.Errorf("p99 markers not placed by value (x right with load, y up with latency): %v", p99)
	}
	if err := writeSVG(io.Discard, Plot{}); err == nil {
		t.Error("an empty plot was written")
	}
}

func TestReplaceSection(t *testing.T) {
	path := t.TempDir() + "/benchmarks.md"
	orig := "# Benchmarks\n\nIntro.\n\n## Load tool\n\nText.\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "## make bench\n\nfirst\n"); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "## make bench\n\nsecond\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Benchmarks\n\nIntro.\n\n" + benchBegin + "\n## make bench\n\nsecond\n" + benchEnd + "\n\n## Load tool\n\nText.\n"
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}
