package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

const css = `body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.sat{background:#fde2e2}
.pass{color:#080;font-weight:bold}.fail{color:#b00;font-weight:bold}pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:11px}
.note{color:#555;font-size:13px}`

// HTML writes the self-contained report page.
func (r *Report) HTML(w io.Writer) error {
	res := r.Result
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadtest %s</title><style>%s</style></head><body>", e(r.Scenario), css)
	fmt.Fprintf(&b, "<h1>%s</h1><p>%s</p>", e(r.Scenario), e(r.Description))
	fmt.Fprintf(&b, "<p class=\"note\">target %s · started %s · %d cores %s · %s · trace sampling %s</p>", e(r.Target),
		res.Started.Format("2006-01-02 15:04:05"), r.Machine.Cores, e(r.Machine.CPU), e(r.Machine.GoVersion), e(r.Sampling.String()))
	if r.Passed {
		b.WriteString(`<p class="pass">PASS: every threshold held</p>`)
	} else {
		for _, f := range r.Failures {
			fmt.Fprintf(&b, `<p class="fail">FAIL: %s</p>`, e(f))
		}
	}
	b.WriteString(`<p class="note">Latency is measured from each request's intended send time (open model): a stall in the server or the generator counts against every request that was due during it.</p>`)

	b.WriteString("<h2>Stages</h2><table><tr><th>stage</th><th>target/s</th><th>sent/s</th><th>achieved/s</th><th>ratio</th><th>p50</th><th>p99</th><th>max</th><th>errors</th></tr>")
	for _, st := range res.Stages {
		cls, name := "", st.Name
		if st.Warmup {
			name += " (warm-up)"
		}
		p50, p99 := fmtMS(st.Latency.P50), fmtMS(st.Latency.P99)
		ratio := fmt.Sprintf("%.1f%%", st.AchievedRatio*100)
		if st.Saturated {
			cls, ratio, p50, p99 = ` class="sat"`, ratio+" saturated", "-", "-"
		}
		fmt.Fprintf(&b, "<tr%s><td>%s</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>",
			cls, e(name), st.TargetRPS, st.SentRPS, st.AchievedRPS, ratio, p50, p99, fmtMS(st.Latency.Max), st.Latency.Errors)
	}
	b.WriteString("</table><p class=\"note\">A saturated stage achieved less than 99 % of its target rate: its latencies describe a growing queue, not the service, and are not reported as a result.</p>")

	b.WriteString("<h2>Requests</h2><table><tr><th>request</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th></tr>")
	row := func(name string, s engine.Summary) {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>",
			e(name), s.Count, fmtMS(s.P50), fmtMS(s.P90), fmtMS(s.P99), fmtMS(s.P999), fmtMS(s.Max), s.Errors)
	}
	for _, q := range res.Requests {
		row(q.Name, q.Latency)
	}
	row("all, from intended send time", res.Total)
	row("all, from actual send (hides queueing)", res.ServiceTime)
	for _, p := range res.Phases {
		row(p.Name, p.Latency)
	}
	b.WriteString("</table>")
	if len(res.Errors) > 0 {
		fmt.Fprintf(&b, "<h3>Errors (%.3f%%)</h3><table><tr><th>kind</th><th>count</th></tr>", res.ErrorRate*100)
		for _, k := range sortedKeys(res.Errors) {
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td></tr>", e(k), res.Errors[k])
		}
		b.WriteString("</table>")
	}

	b.WriteString("<h2>Plots</h2>")
	var p50, p99, mx, target, achieved, sent []([2]float64)
	for _, s := range res.Seconds {
		t := float64(s.T)
		if s.P99 > 0 || s.Max > 0 {
			p50 = append(p50, [2]float64{t, s.P50})
			p99 = append(p99, [2]float64{t, s.P99})
			mx = append(mx, [2]float64{t, s.Max})
		}
		target = append(target, [2]float64{t, s.TargetRPS})
		achieved = append(achieved, [2]float64{t, float64(s.OK)})
		sent = append(sent, [2]float64{t, float64(s.Sent)})
	}
	b.WriteString(LineChart("Latency per second (by intended send time)", "seconds", "ms",
		[]Series{{Name: "max", Points: mx, Color: "#bbb"}, {Name: "p99", Points: p99}, {Name: "p50", Points: p50}}, nil))
	b.WriteString(LineChart("Throughput: target vs achieved", "seconds", "requests/s",
		[]Series{{Name: "target", Points: target, Dashed: true, Color: "#555"}, {Name: "sent", Points: sent}, {Name: "succeeded", Points: achieved}}, nil))
	b.WriteString(SpectrumChart("Percentile spectrum", []SpectrumLine{{Name: "all requests", Points: res.Spectrum}}))

	g := res.Generator
	fmt.Fprintf(&b, "<h2>Generator</h2><p>%d requests sent; CPU %.2f s = %.1f %% of %d cores (%.0f µs per request); send lag p50 %s, p99 %s, max %s; worst 5-second window %.2f %% off its target; peak %d in flight (cap %d).</p>",
		g.Sent, g.CPUSeconds, g.CPUShare*100, g.Cores, g.CPUPerRequestUS, fmtMS(g.SendLagP50MS), fmtMS(g.SendLagP99MS), fmtMS(g.SendLagMaxMS), g.SendRateErrorPct, g.PeakInFlight, g.MaxWorkers)
	if res.Aborted != "" {
		fmt.Fprintf(&b, `<p class="fail">Stopped early: %s</p>`, e(res.Aborted))
	}

	if len(res.Slowest) > 0 {
		links := map[string]Trace{}
		for _, t := range r.Traces {
			links[t.TraceID] = t
		}
		b.WriteString("<h2>Slowest requests</h2><table><tr><th>latency</th><th>request</th><th>URL</th><th>status</th><th>due at</th><th>trace</th></tr>")
		for _, s := range res.Slowest {
			status := fmt.Sprint(s.Status)
			if s.Error != "" {
				status = s.Error
			}
			trace := e(orDash(s.TraceID))
			if t, ok := links[s.TraceID]; ok {
				trace = fmt.Sprintf(`<a href="%s">%s</a>`, e(t.Link), e(s.TraceID))
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s %s</td><td>%s</td><td>%.2fs</td><td>%s</td></tr>",
				fmtMS(s.LatencyMS), e(s.Name), e(s.Method), e(s.URL), e(status), s.IntendedAt, trace)
		}
		b.WriteString("</table>")
		for _, t := range r.Traces {
			fmt.Fprintf(&b, "<h3>trace %s</h3>", e(t.TraceID))
			switch {
			case t.trace != nil:
				b.WriteString(waterfallSVG(t))
				fmt.Fprintf(&b, "<pre>%s</pre>", e(t.Waterfall))
			case t.Waterfall != "":
				fmt.Fprintf(&b, "<pre>%s</pre>", e(t.Waterfall))
			default:
				fmt.Fprintf(&b, "<p class=\"note\">no waterfall: %s</p>", e(t.Error))
			}
		}
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SpectrumLine is one distribution on a spectrum chart.
type SpectrumLine struct {
	Name   string
	Points []engine.Point
}

// SpectrumChart plots latency against percentile on a "number of nines"
// axis, where the tail gets as much room as the median.
func SpectrumChart(title string, lines []SpectrumLine) string {
	nines := func(p float64) float64 {
		if p >= 100 {
			return 4.5
		}
		return math.Min(-math.Log10(1-p/100), 4.5)
	}
	var series []Series
	for _, l := range lines {
		var pts [][2]float64
		for _, p := range l.Points {
			pts = append(pts, [2]float64{nines(p.Percentile), p.MS})
		}
		series = append(series, Series{Name: l.Name, Points: pts})
	}
	ticks := []Tick{{0, "0%"}, {nines(50), "50%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {4.5, "max"}}
	return LineChart(title, "percentile", "ms", series, ticks)
}

// waterfallSVG draws a trace's spans as bars on its timeline.
func waterfallSVG(t Trace) string {
	tr := t.trace
	rowH, labelW, barW := 16, 330, 460
	h := 24 + rowH*len(tr.Spans)
	total := float64(tr.Duration)
	if total <= 0 {
		total = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, labelW+barW+80, h, labelW+barW+80, h)
	for i, s := range tr.Spans {
		y := 16 + i*rowH
		color := palette[i%len(palette)]
		if s.Error {
			color = "#d62728"
		}
		x := labelW + int(float64(s.Offset)/total*float64(barW))
		w := max(int(float64(s.Duration)/total*float64(barW)), 1)
		label := strings.Repeat("  ", s.Depth) + s.Service + " " + s.Operation
		fmt.Fprintf(&b, `<text x="2" y="%d" %s xml:space="preserve">%s</text>`, y+10, textStyle, html.EscapeString(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, x, y+1, w, rowH-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s>%s</text>`, x+w+4, y+10, textStyle, fmtMS(float64(s.Duration.Microseconds())/1000))
	}
	b.WriteString("</svg>")
	return b.String()
}
