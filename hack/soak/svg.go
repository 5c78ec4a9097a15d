/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/template"
)

// series is one line of the plot: a process's RSS (MB) at times (seconds from the start).
type series struct {
	Name   string
	Points []point
}

type point struct{ T, V float64 }

// Layout of the plot, in SVG user units.
const (
	svgWidth, svgHeight = 800, 420
	svgLeft, svgRight   = 60, 170
	svgTop, svgBottom   = 30, 50
	svgTicks            = 5
)

var svgColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

var svgTemplate = template.Must(template.New("svg").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif" font-size="12">
<title>{{html .Title}}</title>
<rect width="{{.W}}" height="{{.H}}" fill="white"/>
<text x="{{.Left}}" y="18" font-size="14">{{html .Title}}</text>
{{range .XTicks}}<line x1="{{.Pos}}" y1="{{$.Top}}" x2="{{.Pos}}" y2="{{$.Y0}}" stroke="#ddd"/>
<text x="{{.Pos}}" y="{{$.XLabelY}}" text-anchor="middle">{{html .Label}}</text>
{{end}}{{range .YTicks}}<line x1="{{$.Left}}" y1="{{.Pos}}" x2="{{$.X1}}" y2="{{.Pos}}" stroke="#ddd"/>
<text x="{{$.YLabelX}}" y="{{.Pos}}" text-anchor="end" dominant-baseline="middle">{{html .Label}}</text>
{{end}}<line x1="{{.Left}}" y1="{{.Y0}}" x2="{{.X1}}" y2="{{.Y0}}" stroke="black"/>
<line x1="{{.Left}}" y1="{{.Top}}" x2="{{.Left}}" y2="{{.Y0}}" stroke="black"/>
<text x="{{.MidX}}" y="{{.XTitleY}}" text-anchor="middle">{{.XTitle}}</text>
<text x="14" y="{{.MidY}}" text-anchor="middle" transform="rotate(-90 14 {{.MidY}})">{{.YTitle}}</text>
{{range .Marks}}<line x1="{{.Pos}}" y1="{{$.Top}}" x2="{{.Pos}}" y2="{{$.Y0}}" stroke="#999" stroke-dasharray="3,3"/>
<text x="{{.Pos}}" y="{{$.MarkY}}" font-size="9" text-anchor="middle">{{html .Label}}</text>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="1.5" points="{{.Points}}"/>
<rect x="{{$.LegendX}}" y="{{.LegendY}}" width="12" height="3" fill="{{.Color}}"/>
<text x="{{$.LegendTextX}}" y="{{.LegendY}}" dominant-baseline="middle">{{html .Name}}</text>
{{end}}</svg>
`))

type svgTick struct {
	Pos   float64
	Label string
}

type svgLine struct {
	Name, Color, Points string
	LegendY             float64
}

// writeSVG plots the series (x in seconds, shown in minutes; y in MB) with vertical marks at
// the given times (seconds) labelled with their names, as a self-contained SVG.
func writeSVG(w io.Writer, title string, all []series, marks []svgTick) error {
	var maxT, maxV float64
	for _, s := range all {
		for _, p := range s.Points {
			maxT, maxV = math.Max(maxT, p.T), math.Max(maxV, p.V)
		}
	}
	maxT, maxV = math.Max(maxT, 1), niceCeil(math.Max(maxV, 1))
	x0, x1 := float64(svgLeft), float64(svgWidth-svgRight)
	y0, y1 := float64(svgHeight-svgBottom), float64(svgTop)
	px := func(t float64) float64 { return round1(x0 + (x1-x0)*t/maxT) }
	py := func(v float64) float64 { return round1(y0 - (y0-y1)*v/maxV) }
	data := map[string]any{
		"W": svgWidth, "H": svgHeight, "Title": title, "Left": x0, "Top": y1, "X1": x1, "Y0": y0,
		"XLabelY": y0 + 16, "YLabelX": x0 - 6, "MidX": round1((x0 + x1) / 2), "MidY": round1((y0 + y1) / 2),
		"XTitleY": y0 + 36, "XTitle": "minutes from the start of the load", "YTitle": "RSS (MB)", "MarkY": y1 - 4,
		"LegendX": x1 + 12, "LegendTextX": x1 + 30,
	}
	var xt, yt []svgTick
	for i := 0; i <= svgTicks; i++ {
		t := maxT * float64(i) / svgTicks
		xt = append(xt, svgTick{px(t), fmt.Sprintf("%.1f", t/60)})
		v := maxV * float64(i) / svgTicks
		yt = append(yt, svgTick{py(v), fmt.Sprintf("%.0f", v)})
	}
	data["XTicks"], data["YTicks"] = xt, yt
	var ms []svgTick
	for _, m := range marks {
		ms = append(ms, svgTick{px(m.Pos), m.Label})
	}
	data["Marks"] = ms
	var lines []svgLine
	for i, s := range all {
		var b strings.Builder
		for j, p := range s.Points {
			if j > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%g,%g", px(p.T), py(p.V))
		}
		lines = append(lines, svgLine{Name: s.Name, Color: svgColors[i%len(svgColors)], Points: b.String(), LegendY: y1 + 10 + 18*float64(i)})
	}
	data["Lines"] = lines
	return svgTemplate.Execute(w, data)
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

func round1(v float64) float64 { return math.Round(v*10) / 10 }
