package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// Text writes the terminal summary.
func (r *Report) Text(w io.Writer) {
	res := r.Result
	fmt.Fprintf(w, "\n== %s  →  %s\n", r.Scenario, r.Target)
	if res.Aborted != "" {
		fmt.Fprintf(w, "STOPPED EARLY: %s\n", res.Aborted)
	}
	fmt.Fprintln(w, "latency is measured from each request's intended send time (open model)")
	fmt.Fprintln(w, "trace sampling:", r.Sampling)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\ttarget/s\tsent/s\tachieved/s\tratio\tp50\tp90\tp99\tmax\terrors\t")
	for _, st := range res.Stages {
		name := st.Name
		if st.Warmup {
			name += " (warm-up, not counted)"
		}
		lat := []string{fmtMS(st.Latency.P50), fmtMS(st.Latency.P90), fmtMS(st.Latency.P99), fmtMS(st.Latency.Max)}
		ratio := fmt.Sprintf("%.1f%%", st.AchievedRatio*100)
		if st.Saturated {
			ratio += " SATURATED"
			lat = []string{"-", "-", "-", "(" + fmtMS(st.Latency.Max) + ")"}
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, st.TargetRPS, st.SentRPS,
			st.AchievedRPS, ratio, lat[0], lat[1], lat[2], lat[3], st.Latency.Errors)
	}
	tw.Flush()
	if sat := saturated(res); sat > 0 {
		fmt.Fprintf(w, "%d stage(s) saturated: achieved < 99 %% of target, so their latency is a queue's, not a result (max shown in brackets)\n", sat)
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "request\tcount\tp50\tp90\tp99\tp99.9\tmax\terrors\t")
	row := func(name string, s engine.Summary) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, s.Count, fmtMS(s.P50), fmtMS(s.P90),
			fmtMS(s.P99), fmtMS(s.P999), fmtMS(s.Max), s.Errors)
	}
	for _, q := range res.Requests {
		row(q.Name, q.Latency)
	}
	row("ALL (from intended time)", res.Total)
	row("ALL (from actual send)", res.ServiceTime)
	for _, p := range res.Phases {
		row(p.Name, p.Latency)
	}
	tw.Flush()

	if len(res.Errors) > 0 {
		fmt.Fprintf(w, "\nerrors (%.3f%% of requests):\n", res.ErrorRate*100)
		for _, k := range sortedKeys(res.Errors) {
			fmt.Fprintf(w, "  %-34s %d\n", k, res.Errors[k])
		}
	}
	for _, p := range res.Phases {
		for _, k := range sortedKeys(p.Errors) {
			fmt.Fprintf(w, "  %s: %s %d\n", p.Name, k, p.Errors[k])
		}
	}

	g := res.Generator
	fmt.Fprintf(w, "\ngenerator: %d sent, CPU %.2fs = %.1f%% of %d cores (%.0f µs/request), send lag p99 %s max %s, worst 5 s window %.2f%% off target, peak in flight %d (cap %d)\n",
		g.Sent, g.CPUSeconds, g.CPUShare*100, g.Cores, g.CPUPerRequestUS, fmtMS(g.SendLagP99MS), fmtMS(g.SendLagMaxMS),
		g.SendRateErrorPct, g.PeakInFlight, g.MaxWorkers)

	if len(res.Slowest) > 0 {
		fmt.Fprintf(w, "\n%d slowest requests:\n", len(res.Slowest))
		links := map[string]string{}
		for _, t := range r.Traces {
			links[t.TraceID] = t.Link
		}
		for _, s := range res.Slowest {
			status := fmt.Sprint(s.Status)
			if s.Error != "" {
				status = s.Error
			}
			fmt.Fprintf(w, "  %9s  %-18s %s %s  at %.1fs  %s  trace %s %s\n", fmtMS(s.LatencyMS), s.Name, s.Method,
				s.URL, s.IntendedAt, status, orDash(s.TraceID), links[s.TraceID])
		}
	}
	for _, t := range r.Traces {
		if t.Waterfall != "" {
			fmt.Fprintf(w, "\n%s", t.Waterfall)
			break // the slowest one; the rest are in the HTML and JSON reports
		}
	}

	fmt.Fprintln(w)
	if r.Passed {
		fmt.Fprintln(w, "PASS: every threshold held")
	} else {
		for _, f := range r.Failures {
			fmt.Fprintln(w, "FAIL:", f)
		}
	}
}

func saturated(res *engine.Result) int {
	n := 0
	for _, st := range res.Stages {
		if st.Saturated && !st.Warmup {
			n++
		}
	}
	return n
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
