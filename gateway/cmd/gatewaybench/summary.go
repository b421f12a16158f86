package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The goals the gateway is held to against its peers, on CPU per proxied
// request (the number a shared machine does not blur) and on the latency
// it adds at a modest rate.
const (
	goalVsCaddy      = 1.0 // gateway CPU/request ≤ Caddy's
	goalVsNginx      = 2.0 // ≤ 2× nginx's
	goalAddedP50     = 300 * time.Microsecond
	goalAddedP50Rate = 1000
)

// spread is the median of a set of repeats and its range.
type spread struct{ median, low, high float64 }

func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{}
	}
	v := slices.Sorted(slices.Values(values))
	mid := v[len(v)/2]
	if len(v)%2 == 0 {
		mid = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{median: mid, low: v[0], high: v[len(v)-1]}
}

func (s spread) String() string {
	return fmt.Sprintf("%.0f (%.0f–%.0f)", s.median, s.low, s.high)
}

func (s spread) ms() string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median/1e3, s.low/1e3, s.high/1e3)
}

func each(rs []result, f func(result) float64) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// summarize prints each target's median and spread at each rate, the
// latency each proxy adds over the clones hit directly (paired within a
// round), and the goals; it fails when the gateway misses one.
func summarize(out io.Writer, targets []target, steps []int, results map[string][][]result) error {
	direct := results[targets[0].name]
	fmt.Fprintln(out, "median (min–max) over the repeats:")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\trate\tachieved\tproxy CPU µs/req\tp50 ms\tp99 ms\tadded p50 ms\terrors\t")
	cpu := map[string][]spread{}
	added := map[string][]spread{}
	for _, t := range targets {
		for i, rate := range steps {
			rs := results[t.name][i]
			c := spreadOf(each(rs, cpuUS))
			var add []float64
			for k, r := range rs {
				if k < len(direct[i]) {
					add = append(add, us(r.p50-direct[i][k].p50))
				}
			}
			a := spreadOf(add)
			cpu[t.name] = append(cpu[t.name], c)
			added[t.name] = append(added[t.name], a)
			var errs int64
			for _, r := range rs {
				errs += r.errors
			}
			cpuCell, addCell := "-", "-"
			if t.pids != nil {
				cpuCell, addCell = c.String(), a.ms()
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t\n", t.name, rate,
				spreadOf(each(rs, func(r result) float64 { return r.achieved })),
				cpuCell, spreadOf(each(rs, func(r result) float64 { return us(r.p50) })).ms(),
				spreadOf(each(rs, func(r result) float64 { return us(r.p99) })).ms(), addCell, errs)
		}
	}
	w.Flush()
	fmt.Fprintln(out)

	var missed []string
	check := func(ok bool, format string, args ...any) {
		verdict := "met"
		if !ok {
			verdict = "MISSED"
			missed = append(missed, fmt.Sprintf(format, args...))
		}
		fmt.Fprintf(out, "  %-6s "+format+"\n", append([]any{verdict}, args...)...)
	}
	fmt.Fprintln(out, "goals (medians):")
	for i, rate := range steps {
		gw, cd, ng := cpu["gateway"][i].median, cpu["caddy"][i].median, cpu["nginx"][i].median
		check(gw <= goalVsCaddy*cd, "at %d req/s gateway CPU/request %.0f µs ≤ Caddy's %.0f µs", rate, gw, cd)
		check(gw <= goalVsNginx*ng, "at %d req/s gateway CPU/request %.0f µs ≤ %.0f× nginx's %.0f µs", rate, gw, goalVsNginx, ng)
		if rate == goalAddedP50Rate {
			a := added["gateway"][i].median
			check(a <= us(goalAddedP50), "at %d req/s the gateway adds %.2f ms to p50 ≤ %.2f ms", rate, a/1e3, us(goalAddedP50)/1e3)
		}
	}
	if len(missed) > 0 {
		return errors.New("the gateway missed: " + strings.Join(missed, "; "))
	}
	return nil
}
