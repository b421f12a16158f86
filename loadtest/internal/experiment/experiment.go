package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/loadtest/engine"
	"github.com/scaleshop/scaleshop/loadtest/internal/report"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

// Metric is what an experiment compares across its configurations.
type Metric string

// The metrics.
const (
	// Capacity is the highest rate a sweep held (achieved >= 99 % of target).
	Capacity Metric = "capacity"
	P50      Metric = "p50"
	P99      Metric = "p99"
	Errors   Metric = "errors"
	// Stale is the share of reads that did not see the write before them.
	Stale Metric = "stale reads"
	// DBQueries is the SQL statements the loaded process sent per request
	// (Row.Server).
	DBQueries Metric = "SQL statements per request"
)

// Config is one configuration: Setup prepares the stack and says where to
// send the load; the returned cleanup restores the stack.
type Config struct {
	Name  string
	Setup func(ctx context.Context, s *Stack) (target string, cleanup func(), err error)
	// During runs alongside the load (a failure injected mid-run).
	During func(ctx context.Context, s *Stack)
}

// Experiment compares configurations under one load.
type Experiment struct {
	Name     string
	Concept  string
	Question string
	Load     string // a scenario file, as YAML
	Metric   Metric
	// ServerCost reads each configuration's target process's CPU and
	// database queries per request from its /metrics (a catalog loaded
	// directly, not the gateway).
	ServerCost bool
	Configs    []Config
	// Prepare, when set, readies the stack once before the configurations
	// and returns how to put it back; restore runs on failure too.
	Prepare func(ctx context.Context, s *Stack) (restore func(), err error)
	// Custom, when set, replaces Load and Configs: a measurement that is not
	// an arrival-rate load (a writer reading its own writes).
	Custom func(ctx context.Context, s *Stack, opt Options) ([]Row, error)
	// Verdict reads the rows and says what they show.
	Verdict func(rows []Row) string
	// Check holds the outcome to the experiment's stated expectation: each
	// string is a miss, and any miss makes the run fail (a non-zero exit).
	Check func(o *Outcome) []string
}

// Row is one configuration's numbers.
type Row struct {
	Config      string                 `json:"config"`
	TargetRPS   float64                `json:"target_rps"`
	AchievedRPS float64                `json:"achieved_rps"`
	Capacity    float64                `json:"capacity_rps"` // highest held rate (sweeps)
	P50         float64                `json:"p50_ms"`
	P99         float64                `json:"p99_ms"`
	Errors      int64                  `json:"errors"`
	ErrorKinds  map[string]int64       `json:"error_kinds"`
	Requests    []engine.RequestResult `json:"requests"`
	Saturated   int                    `json:"saturated_stages"`
	CPUShare    float64                `json:"generator_cpu_share"`
	SendErrPct  float64                `json:"generator_send_rate_error_pct"`
	Skipped     string                 `json:"skipped,omitempty"`
	Spectrum    []engine.Point         `json:"spectrum"`
	Aborted     string                 `json:"aborted,omitempty"`
	Stages      []engine.StageResult   `json:"stages"`
	// Reads, StaleReads and ServedFrom are for the read-your-writes rows.
	Reads      int64            `json:"reads,omitempty"`
	StaleReads int64            `json:"stale_reads,omitempty"`
	ServedFrom map[string]int64 `json:"served_from,omitempty"`
	// Server is the loaded process's own cost (Experiment.ServerCost).
	Server *ServerCost `json:"server,omitempty"`
	// CapacityStat is a bisected capacity's repeats (clones, vertical).
	CapacityStat *CapacityStat `json:"capacity_stat,omitempty"`
	// Knee is the knee sweep's one run per rate.
	Knee []Trial `json:"knee,omitempty"`
}

// StalePct is the share of stale reads in percent.
func (r Row) StalePct() float64 {
	if r.Reads == 0 {
		return 0
	}
	return 100 * float64(r.StaleReads) / float64(r.Reads)
}

// Outcome is a finished experiment.
type Outcome struct {
	Name     string    `json:"name"`
	Concept  string    `json:"concept"`
	Question string    `json:"question"`
	Metric   Metric    `json:"metric"`
	Rows     []Row     `json:"rows"`
	Ratio    string    `json:"ratio"`
	Verdict  string    `json:"verdict"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	// Sampling is the trace sampling ratio the stack ran with.
	Sampling telemetry.Sampling `json:"trace_sampling"`
	// Failures are the misses of Check; Passed is true when there are none.
	Failures []string `json:"failures"`
	Passed   bool     `json:"passed"`
	// LoadAvg is the machine's 1-minute load average at the start and end:
	// the machine may be shared.
	LoadAvgStart float64   `json:"load_avg_start"`
	LoadAvgEnd   float64   `json:"load_avg_end"`
	Finished     time.Time `json:"finished"`
}

// Options tune a run.
type Options struct {
	DurationScale float64 // < 1 for a quick look
	Progress      io.Writer
	// Repeats is how many times each capacity is measured (default 3).
	Repeats int
	// MaxClones is how many clone counts clones compares (default 4).
	MaxClones int
}

func (o Options) repeats() int {
	if o.Repeats > 0 {
		return o.Repeats
	}
	return capacityRepeat
}

func (o Options) maxClones() int {
	if o.MaxClones > 0 {
		return min(o.MaxClones, maxClones)
	}
	return maxClones
}

// Run runs every configuration in turn and holds the outcome to Check.
func (e *Experiment) Run(ctx context.Context, s *Stack, opt Options) (*Outcome, error) {
	out, err := e.run(ctx, s, opt)
	if err != nil {
		return nil, err
	}
	if e.Check != nil {
		out.Failures = e.Check(out)
	}
	out.Passed = len(out.Failures) == 0
	out.Finished = time.Now()
	out.LoadAvgEnd = loadAverage()
	return out, nil
}

func (e *Experiment) run(ctx context.Context, s *Stack, opt Options) (*Outcome, error) {
	out := &Outcome{Name: e.Name, Concept: e.Concept, Question: e.Question, Metric: e.Metric,
		Command: "go run ./loadtest experiment " + e.Name, Started: time.Now(), LoadAvgStart: loadAverage(),
		Sampling: telemetry.ReadSampling(ctx, s.M.Endpoints.GatewayAdminURL)}
	if e.Prepare != nil {
		restore, err := e.Prepare(ctx, s)
		if restore != nil {
			defer restore()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: preparing the stack: %w", e.Name, err)
		}
	}
	if e.Custom != nil {
		rows, err := e.Custom(ctx, s, opt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		out.Rows = rows
		out.Ratio = ratio(e.Metric, rows)
		if e.Verdict != nil {
			out.Verdict = e.Verdict(rows)
		}
		return out, nil
	}
	for _, c := range e.Configs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(s.Log, "\n-- %s: %s\n", e.Name, c.Name)
		row, err := e.runOne(ctx, s, c, opt)
		if errors.Is(err, errSkip) {
			row = Row{Config: c.Name, Skipped: err.Error()}
		} else if err != nil {
			return nil, fmt.Errorf("%s / %s: %w", e.Name, c.Name, err)
		}
		out.Rows = append(out.Rows, row)
		fmt.Fprintf(s.Log, "   %s: achieved %.1f/s of %.1f, capacity %.0f/s, p50 %.2f ms, p99 %.2f ms, errors %d %v\n",
			c.Name, row.AchievedRPS, row.TargetRPS, row.Capacity, row.P50, row.P99, row.Errors, row.ErrorKinds)
	}
	out.Ratio = ratio(e.Metric, out.Rows)
	if e.Verdict != nil {
		out.Verdict = e.Verdict(out.Rows)
	}
	return out, nil
}

func (e *Experiment) runOne(ctx context.Context, s *Stack, c Config, opt Options) (Row, error) {
	sc, err := scenario.Parse(e.Name+".yaml", []byte(e.Load))
	if err != nil {
		return Row{}, err
	}
	if opt.DurationScale > 0 && opt.DurationScale != 1 {
		sc.Scale(1, opt.DurationScale)
	}
	target := s.M.Endpoints.GatewayURL
	if c.Setup != nil {
		t, cleanup, err := c.Setup(ctx, s)
		if cleanup != nil {
			defer cleanup() // a setup that failed half-way is undone too
		}
		if err != nil {
			return Row{}, err
		}
		if t != "" {
			target = t
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	if c.During != nil {
		go func() {
			defer close(done)
			c.During(runCtx, s)
		}()
	} else {
		close(done)
	}
	var before costSample
	if e.ServerCost {
		if before, err = readCostSample(ctx, target); err != nil {
			return Row{}, err
		}
	}
	res, err := sc.Run(runCtx, scenario.Options{BaseURL: target, Progress: opt.Progress, Log: s.Log, CustomerPrefix: "exp-" + e.Name})
	cancel()
	<-done
	if err != nil {
		return Row{}, err
	}
	row := rowOf(c.Name, res.Result)
	if e.ServerCost {
		after, err := readCostSample(ctx, target)
		if err != nil {
			return Row{}, err
		}
		row.Server = costBetween(before, after)
	}
	return row, nil
}

func rowOf(name string, r *engine.Result) Row {
	row := Row{Config: name, P50: r.Total.P50, P99: r.Total.P99, Errors: r.Total.Errors, ErrorKinds: r.Errors,
		Requests: r.Requests, CPUShare: r.Generator.CPUShare, SendErrPct: r.Generator.SendRateErrorPct,
		Spectrum: r.Spectrum, Aborted: r.Aborted, Stages: r.Stages}
	var target, achieved, secs float64
	for _, st := range r.Stages {
		if st.Warmup {
			continue
		}
		target += st.TargetRPS * st.DurationS
		achieved += st.AchievedRPS * st.DurationS
		secs += st.DurationS
		if st.Saturated {
			row.Saturated++
		} else {
			row.Capacity = math.Max(row.Capacity, st.AchievedRPS)
		}
	}
	if secs > 0 {
		row.TargetRPS, row.AchievedRPS = target/secs, achieved/secs
	}
	return row
}

// ratio compares every row with the first on the experiment's metric.
func ratio(m Metric, rows []Row) string {
	if len(rows) < 2 || rows[0].Skipped != "" {
		return ""
	}
	base := rows[0]
	var parts []string
	for _, r := range rows[1:] {
		if r.Skipped != "" {
			continue
		}
		var a, b float64
		switch m {
		case Capacity:
			a, b = capacityRatio(base, r), 1
		case P50:
			a, b = r.P50, base.P50
		case P99:
			a, b = r.P99, base.P99
		case Errors:
			parts = append(parts, fmt.Sprintf("%s: %d errors vs %d", r.Config, r.Errors, base.Errors))
			continue
		case Stale:
			parts = append(parts, fmt.Sprintf("%s %.1f %% vs %s %.1f %%", r.Config, r.StalePct(), base.Config, base.StalePct()))
			continue
		case DBQueries:
			if r.Server == nil || base.Server == nil {
				continue
			}
			a, b = r.Server.DBQueriesPerRequest, base.Server.DBQueriesPerRequest
		}
		if b > 0 {
			parts = append(parts, fmt.Sprintf("%s / %s = %.2f×", r.Config, base.Config, a/b))
		}
	}
	return fmt.Sprintf("%s: %s", m, strings.Join(parts, "; "))
}

// Text prints the outcome as a table.
func (o *Outcome) Text(w io.Writer) {
	fmt.Fprintf(w, "\n== experiment %s (%s)\n%s\ntrace sampling: %s\n", o.Name, o.Concept, o.Question, o.Sampling)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration\ttarget/s\tachieved/s\tcapacity/s\tp50\tp99\terrors\tsaturated stages\t")
	for _, r := range o.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped: %s\t\t\t\t\t\t\t\n", r.Config, r.Skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.0f\t%.2fms\t%.2fms\t%d\t%d\t\n", r.Config, r.TargetRPS, r.AchievedRPS,
			r.Capacity, r.P50, r.P99, r.Errors, r.Saturated)
	}
	tw.Flush()
	for _, r := range o.Rows {
		if r.Server != nil {
			fmt.Fprintf(w, "%s: the process spent %.0f µs of CPU and sent %.2f SQL statements per request (%.0f requests)\n",
				r.Config, r.Server.CPUPerRequestUS, r.Server.DBQueriesPerRequest, r.Server.Requests)
		}
	}
	for _, r := range o.Rows {
		if r.Reads > 0 {
			fmt.Fprintf(w, "%s: %d of %d reads stale (%.1f %%), served from %v\n", r.Config, r.StaleReads, r.Reads, r.StalePct(), r.ServedFrom)
		}
	}
	if o.Ratio != "" {
		fmt.Fprintln(w, "ratio:", o.Ratio)
	}
	if o.Verdict != "" {
		fmt.Fprintln(w, o.Verdict)
	}
	fmt.Fprintf(w, "load average %.1f at the start, %.1f at the end\n", o.LoadAvgStart, o.LoadAvgEnd)
	if o.Passed {
		fmt.Fprintln(w, "PASS: as expected")
	} else {
		fmt.Fprintf(w, "FAIL: %s\n", strings.Join(o.Failures, "; "))
	}
}

// Chart is the side-by-side bar chart of the configurations.
func (o *Outcome) Chart() string {
	var bars []report.Bar
	label := map[Metric]string{Capacity: "highest rate held (req/s)", P50: "p50 (ms)", P99: "p99 (ms)", Errors: "errors", Stale: "stale reads (%)",
		DBQueries: "SQL statements per request"}[o.Metric]
	for _, r := range o.Rows {
		if r.Skipped != "" {
			continue
		}
		v := map[Metric]float64{Capacity: r.Capacity, P50: r.P50, P99: r.P99, Errors: float64(r.Errors), Stale: r.StalePct()}[o.Metric]
		if o.Metric == DBQueries && r.Server != nil {
			v = r.Server.DBQueriesPerRequest
		}
		bars = append(bars, report.Bar{Label: r.Config, Value: v})
	}
	return report.BarChart(o.Name+": "+label, label, bars)
}

// Spectra plots every configuration's percentile spectrum on one chart.
func (o *Outcome) Spectra() string {
	var lines []report.SpectrumLine
	for _, r := range o.Rows {
		if r.Skipped == "" && len(r.Spectrum) > 0 {
			lines = append(lines, report.SpectrumLine{Name: r.Config, Points: r.Spectrum})
		}
	}
	return report.SpectrumChart(o.Name+": percentile spectrum", lines)
}
