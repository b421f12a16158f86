package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Plots are drawn here as inline SVG so the HTML report is one file that
// opens anywhere, offline, with nothing to fetch.

const (
	plotW, plotH             = 820, 280
	padL, padR, padT, padB   = 64, 150, 28, 40
	innerW, innerH           = plotW - padL - padR, plotH - padT - padB
	axisStyle                = `stroke="#888" stroke-width="1"`
	gridStyle                = `stroke="#e4e4e4" stroke-width="1"`
	textStyle                = `font-family="sans-serif" font-size="11" fill="#333"`
	titleStyle               = `font-family="sans-serif" font-size="13" font-weight="bold" fill="#222"`
	defaultSeriesColorsCount = 6
)

var palette = [defaultSeriesColorsCount]string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// Series is one line.
type Series struct {
	Name   string
	Color  string // default from the palette
	Dashed bool
	Points [][2]float64
}

// Tick is an axis label at a position.
type Tick struct {
	At    float64
	Label string
}

// LineChart draws series on shared axes. xTicks replaces the automatic x
// labels when set.
func LineChart(title, xLabel, yLabel string, series []Series, xTicks []Tick) string {
	minX, maxX, maxY := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range series {
		for _, p := range s.Points {
			minX, maxX, maxY = math.Min(minX, p[0]), math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	if math.IsInf(minX, 0) {
		return emptyChart(title)
	}
	if maxX == minX {
		maxX = minX + 1
	}
	yTicks := niceTicks(maxY)
	top := yTicks[len(yTicks)-1]
	x := func(v float64) float64 { return padL + (v-minX)/(maxX-minX)*innerW }
	y := func(v float64) float64 { return padT + innerH - v/top*innerH }

	var b strings.Builder
	open(&b, title)
	for _, t := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" %s/>`, padL, y(t), padL+innerW, y(t), gridStyle)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`, padL-6, y(t)+4, textStyle, num(t))
	}
	if xTicks == nil {
		for _, t := range niceTicksRange(minX, maxX) {
			xTicks = append(xTicks, Tick{t, num(t)})
		}
	}
	for _, t := range xTicks {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`, x(t.At), padT+innerH+16, textStyle, html.EscapeString(t.Label))
	}
	axes(&b, xLabel, yLabel)
	for i, s := range series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>`, color, dash, strings.Join(pts, " "))
		if len(s.Points) == 1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x(s.Points[0][0]), y(s.Points[0][1]), color)
		}
		legend(&b, i, s.Name, color)
	}
	b.WriteString("</svg>")
	return b.String()
}

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
	Note  string // printed above the bar
	Color string
}

// BarChart draws bars side by side.
func BarChart(title, yLabel string, bars []Bar) string {
	if len(bars) == 0 {
		return emptyChart(title)
	}
	maxY := 0.0
	for _, b := range bars {
		maxY = math.Max(maxY, b.Value)
	}
	yTicks := niceTicks(maxY)
	top := yTicks[len(yTicks)-1]
	y := func(v float64) float64 { return padT + innerH - v/top*innerH }
	var b strings.Builder
	open(&b, title)
	for _, t := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" %s/>`, padL, y(t), padL+innerW, y(t), gridStyle)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`, padL-6, y(t)+4, textStyle, num(t))
	}
	axes(&b, "", yLabel)
	slot := float64(innerW) / float64(len(bars))
	for i, bar := range bars {
		color := bar.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		x0 := padL + slot*float64(i) + slot*0.2
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x0, y(bar.Value), slot*0.6, y(0)-y(bar.Value), color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`, x0+slot*0.3, padT+innerH+16, textStyle, html.EscapeString(bar.Label))
		note := bar.Note
		if note == "" {
			note = num(bar.Value)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>%s</text>`, x0+slot*0.3, y(bar.Value)-5, textStyle, html.EscapeString(note))
	}
	b.WriteString("</svg>")
	return b.String()
}

func open(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<title>%s</title><text x="%d" y="16" %s>%s</text>`, html.EscapeString(title), padL, titleStyle, html.EscapeString(title))
}

func axes(b *strings.Builder, xLabel, yLabel string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`, padL, padT, padL, padT+innerH, axisStyle)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" %s/>`, padL, padT+innerH, padL+innerW, padT+innerH, axisStyle)
	if xLabel != "" {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" %s>%s</text>`, padL+innerW/2, plotH-6, textStyle, html.EscapeString(xLabel))
	}
	if yLabel != "" {
		fmt.Fprintf(b, `<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)" %s>%s</text>`, padT+innerH/2, padT+innerH/2, textStyle, html.EscapeString(yLabel))
	}
}

func legend(b *strings.Builder, i int, name, color string) {
	ly := padT + 10 + i*18
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`, padL+innerW+12, ly-4, color)
	fmt.Fprintf(b, `<text x="%d" y="%d" %s>%s</text>`, padL+innerW+32, ly+1, textStyle, html.EscapeString(name))
}

func emptyChart(title string) string {
	var b strings.Builder
	open(&b, title)
	fmt.Fprintf(&b, `<text x="%d" y="%d" %s>no data</text></svg>`, padL, padT+innerH/2, textStyle)
	return b.String()
}

// niceTicks returns 0 and round steps up to at least max.
func niceTicks(max float64) []float64 {
	if max <= 0 {
		return []float64{0, 1}
	}
	step := niceStep(max / 5)
	var out []float64
	for v := 0.0; ; v += step {
		out = append(out, v)
		if v >= max {
			return out
		}
	}
}

func niceTicksRange(lo, hi float64) []float64 {
	step := niceStep((hi - lo) / 8)
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}
