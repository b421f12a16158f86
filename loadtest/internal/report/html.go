package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/scaleshop/scaleshop/loadtest/internal/engine"
)

const css = `body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.sat{background:#fde2e2}
.pass{color:#080;font-weight:bold}.fail{color:#b00;font-weight:bold}pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:11px}
.note{color:#555;font-size:13px}`

// page is the report's HTML. html/template escapes every value the run
// produced (scenario text, URLs, error messages, span names); only the
// charts, which this package draws and escapes itself, go in as HTML.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":      fmtMS,
	"pct":     func(v float64) string { return fmt.Sprintf("%.1f%%", v*100) },
	"rps":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"orDash":  orDash,
	"started": func(r *Report) string { return r.Result.Started.Format("2006-01-02 15:04:05") },
}).Parse(`<!doctype html><html><head><meta charset="utf-8"><title>loadtest {{.R.Scenario}}</title><style>{{.CSS}}</style></head><body>
<h1>{{.R.Scenario}}</h1><p>{{.R.Description}}</p>
<p class="note">target {{.R.Target}} · started {{started .R}} · {{.R.Machine.Cores}} cores {{.R.Machine.CPU}} · {{.R.Machine.GoVersion}} · trace sampling {{.R.Sampling.String}}</p>
{{if .R.Passed}}<p class="pass">PASS: every threshold held</p>{{else}}{{range .R.Failures}}<p class="fail">FAIL: {{.}}</p>{{end}}{{end}}
<p class="note">Latency is measured from each request's intended send time (open model): a stall in the server or the generator counts against every request that was due during it.</p>
<h2>Stages</h2><table><tr><th>stage</th><th>target/s</th><th>sent/s</th><th>achieved/s</th><th>ratio</th><th>p50</th><th>p99</th><th>max</th><th>errors</th></tr>
{{range .R.Result.Stages}}<tr{{if .Saturated}} class="sat"{{end}}><td>{{.Name}}{{if .Warmup}} (warm-up){{end}}</td><td>{{rps .TargetRPS}}</td><td>{{rps .SentRPS}}</td><td>{{rps .AchievedRPS}}</td>
{{- if .Saturated}}<td>{{pct .AchievedRatio}} saturated</td><td>-</td><td>-</td>{{else}}<td>{{pct .AchievedRatio}}</td><td>{{ms .Latency.P50}}</td><td>{{ms .Latency.P99}}</td>{{end -}}
<td>{{ms .Latency.Max}}</td><td>{{.Latency.Errors}}</td></tr>
{{end}}</table><p class="note">A saturated stage achieved less than 99 % of its target rate: its latencies describe a growing queue, not the service, and are not reported as a result.</p>
<h2>Requests</h2><table><tr><th>request</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td>{{.S.Count}}</td><td>{{ms .S.P50}}</td><td>{{ms .S.P90}}</td><td>{{ms .S.P99}}</td><td>{{ms .S.P999}}</td><td>{{ms .S.Max}}</td><td>{{.S.Errors}}</td></tr>
{{end}}</table>
{{with .Errors}}<h3>Errors ({{$.ErrorRate}})</h3><table><tr><th>kind</th><th>count</th></tr>{{range .}}<tr><td>{{.Kind}}</td><td>{{.Count}}</td></tr>{{end}}</table>{{end}}
<h2>Plots</h2>{{range .Charts}}{{.}}{{end}}
{{with .R.Result.Generator}}<h2>Generator</h2><p>{{.Sent}} requests sent; CPU {{printf "%.2f" .CPUSeconds}} s = {{pct .CPUShare}} of {{.Cores}} cores ({{printf "%.0f" .CPUPerRequestUS}} µs per request); send lag p50 {{ms .SendLagP50MS}}, p99 {{ms .SendLagP99MS}}, max {{ms .SendLagMaxMS}}; worst 5-second window {{printf "%.2f" .SendRateErrorPct}} % off its target; peak {{.PeakInFlight}} in flight (cap {{.MaxWorkers}}).</p>{{end}}
{{with .R.Result.Aborted}}<p class="fail">Stopped early: {{.}}</p>{{end}}
{{if .R.Result.Slowest}}<h2>Slowest requests</h2><table><tr><th>latency</th><th>request</th><th>URL</th><th>status</th><th>due at</th><th>trace</th></tr>
{{range .Slowest}}<tr><td>{{ms .LatencyMS}}</td><td>{{.Name}}</td><td>{{.Method}} {{.URL}}</td><td>{{.Status}}</td><td>{{printf "%.2f" .IntendedAt}}s</td><td>{{if .Link}}<a href="{{.Link}}">{{.TraceID}}</a>{{else}}{{orDash .TraceID}}{{end}}</td></tr>
{{end}}</table>
{{range .Traces}}<h3>trace {{.TraceID}}</h3>{{if .SVG}}{{.SVG}}<pre>{{.Waterfall}}</pre>{{else if .Waterfall}}<pre>{{.Waterfall}}</pre>{{else}}<p class="note">no waterfall: {{.Error}}</p>{{end}}
{{end}}{{end}}</body></html>
`))

// pageData is what the page template reads: the report, plus the rows,
// charts and links it derives.
type pageData struct {
	R         *Report
	CSS       template.CSS
	Rows      []summaryRow
	ErrorRate string
	Errors    []errorRow
	Charts    []template.HTML
	Slowest   []slowRow
	Traces    []traceView
}

type summaryRow struct {
	Name string
	S    engine.Summary
}

type errorRow struct {
	Kind  string
	Count int64
}

type slowRow struct {
	LatencyMS                 float64
	Name, Method, URL, Status string
	IntendedAt                float64
	TraceID                   string
	Link                      string // to the trace in Jaeger, when fetched
}

type traceView struct {
	TraceID, Waterfall, Error string
	SVG                       template.HTML
}

// HTML writes the self-contained report page.
func (r *Report) HTML(w io.Writer) error {
	res := r.Result
	d := pageData{R: r, CSS: css, ErrorRate: fmt.Sprintf("%.3f%%", res.ErrorRate*100)}
	for _, q := range res.Requests {
		d.Rows = append(d.Rows, summaryRow{q.Name, q.Latency})
	}
	d.Rows = append(d.Rows, summaryRow{"all, from intended send time", res.Total},
		summaryRow{"all, from actual send (hides queueing)", res.ServiceTime})
	for _, p := range res.Phases {
		d.Rows = append(d.Rows, summaryRow{p.Name, p.Latency})
	}
	for _, k := range sortedKeys(res.Errors) {
		d.Errors = append(d.Errors, errorRow{k, res.Errors[k]})
	}

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
	// The charts escape their own text (svg.go), so they go in as HTML.
	d.Charts = []template.HTML{
		template.HTML(LineChart("Latency per second (by intended send time)", "seconds", "ms",
			[]Series{{Name: "max", Points: mx, Color: "#bbb"}, {Name: "p99", Points: p99}, {Name: "p50", Points: p50}}, nil)),
		template.HTML(LineChart("Throughput: target vs achieved", "seconds", "requests/s",
			[]Series{{Name: "target", Points: target, Dashed: true, Color: "#555"}, {Name: "sent", Points: sent}, {Name: "succeeded", Points: achieved}}, nil)),
		template.HTML(SpectrumChart("Percentile spectrum", []SpectrumLine{{Name: "all requests", Points: res.Spectrum}})),
	}

	links := map[string]string{}
	for _, t := range r.Traces {
		links[t.TraceID] = t.Link
	}
	for _, s := range res.Slowest {
		status := fmt.Sprint(s.Status)
		if s.Error != "" {
			status = s.Error
		}
		d.Slowest = append(d.Slowest, slowRow{LatencyMS: s.LatencyMS, Name: s.Name, Method: s.Method, URL: s.URL,
			Status: status, IntendedAt: s.IntendedAt, TraceID: s.TraceID, Link: links[s.TraceID]})
	}
	if len(res.Slowest) > 0 {
		for _, t := range r.Traces {
			v := traceView{TraceID: t.TraceID, Waterfall: t.Waterfall, Error: t.Error}
			if t.trace != nil {
				v.SVG = template.HTML(waterfallSVG(t))
			}
			d.Traces = append(d.Traces, v)
		}
	}
	return page.Execute(w, d)
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
