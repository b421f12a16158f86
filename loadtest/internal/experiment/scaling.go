package experiment

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/scaleshop/scaleshop/loadtest/internal/report"
)

// Targets of the scaling experiments.
const (
	twoClonesTarget   = 1.85
	threeClonesTarget = 2.7
	verticalTarget    = 1.8
	maxClones         = 4
)

func clones() *Experiment {
	return &Experiment{
		Name: "clones", Concept: "horizontal scaling, load balancing; performance vs scalability",
		Question: fmt.Sprintf("1, 2, 3 and 4 catalog clones behind the gateway, each under a CPU quota of %g cores (its own cgroup), cached list pages of 100 products, gzip-compressed per response. "+
			"The gateway balances round-robin while it runs. "+
			"Each one's capacity is the highest rate held (achieved ≥ 99 %%, p99 ≤ %s, 0 errors, no request shed by a clone), found by bisection, repeated in blocks (%d unless -repeats says otherwise; each block runs every configuration once, in random order): median and spread, and each ratio the median of the blocks' ratios. "+
			"Targets: 2 clones ≥ %.2f× one, 3 clones ≥ %.1f×, and no N clones above N× by more than the bisection's 5 %% in every block (that would be a measurement bug); up to 3 clones, their CPU at capacity at least %.0f %% of their quota (else they were not the bottleneck) and not over it. "+
			"Every component's CPU at each capacity shows what becomes the bottleneck once the clones are not; one request's latency at %d/s beside it shows performance staying put while capacity grows.",
			cloneCPUs, capacityP99, capacityRepeat, twoClonesTarget, threeClonesTarget, 100*cpuBoundShare, lowLoadRPS),
		Metric: Capacity, Custom: runClones, Verdict: clonesVerdict, Check: clonesCheck,
	}
}

// newScalingProber readies clones and vertical: the gateway round-robin
// (gatewayForCapacity says why), then the prober, which meters the
// restarted gateway's pid. restore puts the gateway's own policy back.
func newScalingProber(ctx context.Context, s *Stack, opt Options) (p *prober, restore func(), err error) {
	restore, err = s.gatewayForCapacity(ctx)
	if err != nil {
		return nil, nil, err
	}
	if p, err = newProber(ctx, s, opt); err != nil {
		restore()
		return nil, nil, err
	}
	return p, restore, nil
}

func runClones(ctx context.Context, s *Stack, opt Options) ([]Row, error) {
	p, restoreGateway, err := newScalingProber(ctx, s, opt)
	if err != nil {
		return nil, err
	}
	defer restoreGateway()
	names, _ := s.CatalogClones()
	scaledOut := 0
	defer func() { s.restoreClones(ctx, scaledOut) }()
	for _, n := range names {
		if err := s.restartClone(ctx, n, cloneCPUs); err != nil {
			return nil, err
		}
	}
	for len(names)+scaledOut < opt.maxClones() {
		if err := s.startWithCPUs(ctx, "scale-out", "catalog", cloneCPUs, cloneEnv(cloneCPUs)); err != nil {
			return nil, err
		}
		scaledOut++
	}
	if err := s.serveWith(ctx, len(names)+scaledOut); err != nil {
		return nil, err
	}
	if err := p.meterClones(ctx); err != nil {
		return nil, err
	}
	var configs []capacityConfig
	for n := 1; n <= opt.maxClones(); n++ {
		configs = append(configs, capacityConfig{name: clonesName(n), quota: float64(n) * cloneCPUs, setup: func(ctx context.Context) error { return s.serveWith(ctx, n) }})
	}
	stats, err := p.measureCapacities(ctx, configs, 200)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, c := range configs {
		rows = append(rows, capacityRow(c.name, stats[c.name]))
	}
	return rows, nil
}

func clonesName(n int) string {
	if n == 1 {
		return "1 clone"
	}
	return fmt.Sprintf("%d clones", n)
}

func capacityRow(name string, st *CapacityStat) Row {
	row := Row{Config: name, Capacity: st.Median, CapacityStat: st}
	if st.LowLoad != nil {
		row.P50, row.P99, row.Errors = st.LowLoad.P50, st.LowLoad.P99, st.LowLoad.Errors
	}
	return row
}

// ratios are each row's capacity over the first row's (capacityRatio).
func ratios(rows []Row) []float64 {
	out := make([]float64, len(rows))
	for i, r := range rows {
		out[i] = capacityRatio(rows[0], r)
	}
	return out
}

// pairedRatios are row's capacities over base's, repeat by repeat: repeat
// r of each configuration ran in the same block (measureCapacities), so
// each pair saw the same machine. This host's other tenants move a lone
// clone's capacity by a third from one quarter of an hour to the next
// (155–219/s over one 23-minute run on 3 Dec, the clone at its full quota
// throughout): a ratio of medians taken in different quarters measured
// the host, and a ratio within a block does not.
func pairedRatios(base, row Row) []float64 {
	b, r := base.CapacityStat, row.CapacityStat
	if b == nil || r == nil || len(b.Runs) == 0 || len(b.Runs) != len(r.Runs) {
		return nil
	}
	var out []float64
	for i := range b.Runs {
		if b.Runs[i].RPS > 0 {
			out = append(out, r.Runs[i].RPS/b.Runs[i].RPS)
		}
	}
	return out
}

// capacityRatio is row's capacity over base's: the median of the paired
// ratios, or the ratio of the medians where the repeats do not pair.
func capacityRatio(base, row Row) float64 {
	if pr := pairedRatios(base, row); len(pr) > 0 {
		return median(pr)
	}
	if base.Capacity <= 0 {
		return 0
	}
	return row.Capacity / base.Capacity
}

func clonesCheck(o *Outcome) []string {
	var fails []string
	rows := o.Rows
	if len(rows) < 3 || rows[0].Capacity <= 0 {
		return []string{"one clone held no rate at all: nothing to compare"}
	}
	r := ratios(rows)
	if r[1] < twoClonesTarget {
		fails = append(fails, fmt.Sprintf("2 clones hold %.2f× one clone, target ≥ %.2f×", r[1], twoClonesTarget))
	}
	if r[2] < threeClonesTarget {
		fails = append(fails, fmt.Sprintf("3 clones hold %.2f× one clone, target ≥ %.1f×", r[2], threeClonesTarget))
	}
	fails = append(fails, quotaUse(rows[:min(3, len(rows))])...)
	for i := range rows {
		if n := float64(i + 1); beyond(rows[0], rows[i], n) {
			fails = append(fails, fmt.Sprintf("%d clones hold %.2f× one clone (at least %.2f× in every block), and more than %d× a rate one clone missed, by more than a bisection's precision, in every block: a measurement bug, not a result",
				i+1, r[i], leastRatio(rows[0], rows[i]), i+1))
		}
	}
	return fails
}

// noisyExcess says so when row's median is above n× base's but its
// lowest repeat over base's highest is not: the medians overstate what the
// repeats show, and the spread is the reading, not the ratio.
func noisyExcess(b *strings.Builder, base, row Row, n float64) {
	r := capacityRatio(base, row)
	if r <= n*(1+bisectPrecision) || beyond(base, row, n) {
		return
	}
	fmt.Fprintf(b, "%s: the repeats give %.2f×, more than %g×, but the lowest of them is %.2f×: the repeats are as wide as the excess, so read the spread, not the ratio\n",
		row.Config, r, n, leastRatio(base, row))
}

// cpuBoundShare is the share of their quota a configuration's clones must
// use at its capacity for that capacity to be theirs. Below it something
// else stopped the rate first (the gateway, the generator, the machine, or
// latency alone), and a ratio of such capacities measures that instead.
const cpuBoundShare = 0.85

// quotaUse checks each row's clones ran at their quota at capacity: not
// under cpuBoundShare of it (not the bottleneck), and not over it by more
// than the meter's error (the meter is wrong: the kernel enforces it).
func quotaUse(rows []Row) []string {
	var fails []string
	for _, row := range rows {
		at, st := atCapacity(row), row.CapacityStat
		if at == nil || st == nil || st.Quota <= 0 {
			continue
		}
		switch share := at.CloneCores / st.Quota; {
		case share < cpuBoundShare:
			fails = append(fails, fmt.Sprintf("%s stopped at %.0f/s with its clones at %.2f of their %.2f cores: something other than their CPU stopped it, so its ratio is not the clones'",
				row.Config, at.RateRPS, at.CloneCores, st.Quota))
		case share > 1.1:
			fails = append(fails, fmt.Sprintf("%s: its clones used %.2f cores of a %.2f-core quota, which the kernel does not allow: the CPU meter is wrong",
				row.Config, at.CloneCores, st.Quota))
		}
	}
	return fails
}

// msPerPage is the serving clones' CPU per page at a trial, in ms.
func msPerPage(t *Trial) float64 {
	if t == nil || t.AchievedRPS <= 0 {
		return 0
	}
	return 1000 * t.CloneCores / t.AchievedRPS
}

// leastRatio is the smallest ratio of row to base that the repeats allow:
// the lowest paired ratio, or where the repeats do not pair, row's lowest
// capacity over base's highest.
func leastRatio(base, row Row) float64 {
	if pr := pairedRatios(base, row); len(pr) > 0 {
		return slices.Min(pr)
	}
	lo, hi := row.Capacity, base.Capacity
	if st := row.CapacityStat; st != nil && st.Min > 0 {
		lo = st.Min
	}
	if st := base.CapacityStat; st != nil && st.Max > 0 {
		hi = st.Max
	}
	if hi <= 0 {
		return 0
	}
	return lo / hi
}

// beyond says row holds more than n× base for certain: in every pair of
// repeats, row held more than n× a rate base missed, by more than a
// bisection's precision (a miss, too, is one trial's verdict). A capacity
// is the highest rate held, which sits up to a bisection's precision (and
// a trial's luck) below the lowest rate missed, so n× one held capacity is
// no physical limit; n× a rate one clone could not hold is.
// A lone clone of q near its capacity is throttled for most of each
// period, and its p99 (the bound) moves by half from one trial to the next
// (95 to 246 ms at 150/s in one run); comparing medians alone would call
// that noise a bug, and hide none of a real excess, which shows in every
// repeat. In CI on 4 Dec a lone clone held 413/s in both blocks and pairs
// 875 and 903/s: 2.12× and 2.19× the held rate, which failed the run.
func beyond(base, row Row, n float64) bool {
	b, r := base.CapacityStat, row.CapacityStat
	if b == nil || r == nil || len(b.Runs) == 0 || len(b.Runs) != len(r.Runs) {
		return leastRatio(base, row) > n*(1+bisectPrecision)
	}
	for i := range b.Runs {
		if r.Runs[i].RPS <= n*b.Runs[i].missed()*(1+bisectPrecision) {
			return false
		}
	}
	return true
}

// missed is the lowest rate the run missed at every try, above the
// capacity it found: where that capacity ends for certain. A run that
// missed none ends a bisection's precision above its capacity.
func (r CapacityRun) missed() float64 {
	held := map[float64]bool{}
	for _, t := range r.Trials {
		held[t.RateRPS] = held[t.RateRPS] || t.Held
	}
	lowest := 0.0
	for rate, ok := range held {
		if !ok && rate > r.RPS && (lowest == 0 || rate < lowest) {
			lowest = rate
		}
	}
	if lowest == 0 {
		return r.RPS * (1 + bisectPrecision)
	}
	return lowest
}

func clonesVerdict(rows []Row) string {
	var b strings.Builder
	capacityTables(&b, rows)
	for i := range rows {
		noisyExcess(&b, rows[0], rows[i], float64(i+1))
	}
	// The clone that adds nothing: the first whose row gains under a
	// tenth of one clone's capacity.
	r := ratios(rows)
	for i := 1; i < len(rows); i++ {
		if rows[0].Capacity > 0 && r[i]-r[i-1] < 0.1 {
			fmt.Fprintf(&b, "clone %d adds nothing (%.0f/s against %.0f/s): the limit is no longer the clones; at %s the busiest other part was %s, and the machine ran %.2f of its cores busy\n",
				i+1, rows[i].Capacity, rows[i-1].Capacity, rows[i].Config, busiest(rows[i]), machineAt(rows[i]))
			break
		}
	}
	return b.String()
}

// capacityTables prints capacities with spread and ratio, every
// component's CPU at each capacity, and low-load latency beside capacity.
func capacityTables(b *strings.Builder, rows []Row) {
	r := ratios(rows)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration\tcapacity/s (median)\tspread (min–max)\truns, block by block\t× first (median of blocks)\tblocks' spread\tlow-load p50\tlow-load p99\t")
	for i, row := range rows {
		st := row.CapacityStat
		if st == nil {
			continue
		}
		var runs []string
		for _, run := range st.Runs {
			runs = append(runs, fmt.Sprintf("%.0f", run.RPS))
		}
		spread := "-"
		if pr := pairedRatios(rows[0], row); len(pr) > 0 {
			spread = fmt.Sprintf("%.2f–%.2f×", slices.Min(pr), slices.Max(pr))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f–%.0f\t%s\t%.2f×\t%s\t%.2f ms\t%.2f ms\t\n", row.Config, st.Median, st.Min, st.Max, strings.Join(runs, ", "), r[i], spread, row.P50, row.P99)
	}
	tw.Flush()
	b.WriteString("\nCPU at capacity (cores; the median run's trial at its capacity):\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	var names []string
	for _, row := range rows {
		if at := atCapacity(row); at != nil {
			for _, c := range at.CPU {
				if !containsString(names, c.Name) {
					names = append(names, c.Name)
				}
			}
		}
	}
	fmt.Fprintf(tw, "configuration\t%s\tmachine\tload avg\tgenerator µs/req\tclones' share of quota\tclone CPU ms/page\t\n", strings.Join(names, "\t"))
	for _, row := range rows {
		at := atCapacity(row)
		if at == nil {
			continue
		}
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = "-"
			for _, c := range at.CPU {
				if c.Name == n {
					cells[i] = fmt.Sprintf("%.2f", c.Cores)
				}
			}
		}
		share := "-"
		if row.CapacityStat.Quota > 0 {
			share = fmt.Sprintf("%.0f %%", 100*at.CloneCores/row.CapacityStat.Quota)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.1f\t%.0f\t%s\t%.2f\t\n", row.Config, strings.Join(cells, "\t"), at.MachineCores, at.LoadAvg, at.GeneratorUSPerReq, share, msPerPage(at))
	}
	tw.Flush()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func atCapacity(row Row) *Trial {
	if row.CapacityStat == nil {
		return nil
	}
	if run := row.CapacityStat.medianRun(); run != nil {
		return run.At
	}
	return nil
}

func busiest(row Row) string {
	at := atCapacity(row)
	if at == nil {
		return "-"
	}
	best := ComponentCPU{}
	for _, c := range at.CPU {
		if !strings.HasPrefix(c.Name, "clone ") && c.Cores > best.Cores {
			best = c
		}
	}
	return fmt.Sprintf("%s at %.2f cores", best.Name, best.Cores)
}

func machineAt(row Row) float64 {
	if at := atCapacity(row); at != nil {
		return at.MachineCores
	}
	return 0
}

func vertical() *Experiment {
	return &Experiment{
		Name: "vertical", Concept: "vertical scaling",
		Question: fmt.Sprintf("One catalog clone made bigger: a quota of q, 2q and 3q cores (q = %g, as in clones) with GOMAXPROCS and the pool grown with it, "+
			"restarted through the stack's supervisor with --cpus; beside it two clones of q, the gateway round-robin. The same bisection, repeated in blocks of every configuration in random order (%d unless -repeats says otherwise), ratios block by block. "+
			"Target: 2q ≥ %.1f× q, with the clone's CPU at capacity at least %.0f %% of its quota in every configuration and not over it; two clones of q within 2× q, as clones are. "+
			"One clone of 2q may exceed 2× q: the CPU table gives each configuration's CPU per page, which falls as one process's rate rises.",
			cloneCPUs, capacityRepeat, verticalTarget, 100*cpuBoundShare),
		Metric: Capacity, Custom: runVertical, Verdict: verticalVerdict, Check: verticalCheck,
	}
}

func runVertical(ctx context.Context, s *Stack, opt Options) ([]Row, error) {
	names, _ := s.CatalogClones()
	if len(names) < 2 {
		return nil, fmt.Errorf("vertical needs the topology's two catalog clones, found %v", names)
	}
	p, restoreGateway, err := newScalingProber(ctx, s, opt)
	if err != nil {
		return nil, err
	}
	defer restoreGateway()
	defer s.restoreClones(ctx, 0)
	quota := map[string]float64{}
	with := func(ctx context.Context, first, second float64) error {
		for i, want := range []float64{first, second} {
			if want == 0 || quota[names[i]] == want {
				continue
			}
			if err := s.restartClone(ctx, names[i], want); err != nil {
				return err
			}
			quota[names[i]] = want
		}
		n := 1
		if second > 0 {
			n = 2
		}
		if err := s.serveWith(ctx, n); err != nil {
			return err
		}
		return p.meterClones(ctx)
	}
	if err := with(ctx, cloneCPUs, cloneCPUs); err != nil {
		return nil, err
	}
	q := cloneCPUs
	configs := []capacityConfig{
		{name: fmt.Sprintf("1 clone, q = %.2f cores", q), quota: q, setup: func(ctx context.Context) error { return with(ctx, q, 0) }},
		{name: fmt.Sprintf("1 clone, 2q = %.2f cores", 2*q), quota: 2 * q, setup: func(ctx context.Context) error { return with(ctx, 2*q, 0) }},
		{name: fmt.Sprintf("1 clone, 3q = %.2f cores", 3*q), quota: 3 * q, setup: func(ctx context.Context) error { return with(ctx, 3*q, 0) }},
		{name: fmt.Sprintf("2 clones of q = %.2f cores", q), quota: 2 * q, setup: func(ctx context.Context) error { return with(ctx, q, q) }},
	}
	stats, err := p.measureCapacities(ctx, configs, 200)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, c := range configs {
		rows = append(rows, capacityRow(c.name, stats[c.name]))
	}
	return rows, nil
}

func verticalCheck(o *Outcome) []string {
	rows := o.Rows
	if len(rows) < 3 || rows[0].Capacity <= 0 {
		return []string{"the q clone held no rate at all: nothing to compare"}
	}
	var fails []string
	r := ratios(rows)
	if r[1] < verticalTarget {
		fails = append(fails, fmt.Sprintf("2q holds %.2f× q, target ≥ %.1f×", r[1], verticalTarget))
	}
	// Two clones of q are clones, held to the clones' rule: each serves a
	// share that one clone of q holds, so more than 2× in every block is
	// a measurement bug. One clone of 2q is not bound that way (its CPU per
	// page falls with its rate; verticalVerdict shows it), but it must be
	// the clone's CPU that stops each configuration, at its quota.
	if len(rows) == 4 && beyond(rows[0], rows[3], 2) {
		fails = append(fails, fmt.Sprintf("%s hold %.2f× q (at least %.2f× in every block), more than 2×: a measurement bug, not a result",
			rows[3].Config, r[3], leastRatio(rows[0], rows[3])))
	}
	return append(fails, quotaUse(rows)...)
}

func verticalVerdict(rows []Row) string {
	var b strings.Builder
	capacityTables(&b, rows)
	if len(rows) == 4 {
		noisyExcess(&b, rows[0], rows[3], 2)
	}
	if len(rows) == 4 && rows[3].Capacity > 0 && rows[1].Capacity > 0 {
		fmt.Fprintf(&b, "one 2q clone against two q clones: %.0f/s against %.0f/s (%.2f×)\n", rows[1].Capacity, rows[3].Capacity, capacityRatio(rows[3], rows[1]))
	}
	// More than k× from k× the quota is no bug when the bigger clone pays
	// less CPU per page, at its quota: a process's cost per page falls as
	// its own rate rises (docs/loadtest.md has the fixed-rate measurements),
	// and one clone of 2q runs at twice the rate of each of two clones of q.
	r := ratios(rows)
	base := msPerPage(atCapacity(rows[0]))
	for i, k := range []float64{1, 2, 3} {
		if i == 0 || i >= len(rows) || r[i] <= k {
			continue
		}
		if own := msPerPage(atCapacity(rows[i])); own > 0 && base > 0 {
			fmt.Fprintf(&b, "%s holds %.2f× q from %g× the cores: at its capacity it spends %.2f ms of CPU a page against q's %.2f (q pays %.2f× as much): the saving of one process serving a higher rate\n",
				rows[i].Config, r[i], k, own, base, base/own)
		}
	}
	return b.String()
}

func knee() *Experiment {
	return &Experiment{
		Name: "knee", Concept: "latency vs throughput",
		Question: fmt.Sprintf("Two catalog clones of %g cores behind the gateway, cached compressed list pages at rising rates (×1.25 a step, one run per rate) until the stack no longer holds the rate. "+
			"The knee is the first rate at which p99 leaves its low-load floor by 2×; the plot is latency (p50, p99) against achieved throughput.", cloneCPUs),
		Metric: Capacity, Custom: runKnee, Verdict: kneeVerdict, Check: kneeCheck,
	}
}

func runKnee(ctx context.Context, s *Stack, opt Options) ([]Row, error) {
	p, err := newProber(ctx, s, opt)
	if err != nil {
		return nil, err
	}
	names, _ := s.CatalogClones()
	defer s.restoreClones(ctx, 0)
	for _, n := range names[:min(2, len(names))] {
		if err := s.restartClone(ctx, n, cloneCPUs); err != nil {
			return nil, err
		}
	}
	if err := s.serveWith(ctx, min(2, len(names))); err != nil {
		return nil, err
	}
	if err := p.meterClones(ctx); err != nil {
		return nil, err
	}
	p.bound = math.MaxInt64 // every rate is a point of the curve; held means only rate and errors here
	row := Row{Config: "gateway, 2 clones"}
	missed := 0
	for rate := 25.0; missed < 2 && len(row.Knee) < 20; rate *= 1.25 {
		t, err := p.trial(ctx, rate)
		if err != nil {
			return nil, err
		}
		row.Knee = append(row.Knee, t)
		if t.Held {
			row.Capacity = max(row.Capacity, t.RateRPS)
			missed = 0
		} else {
			missed++
		}
	}
	row.P50, row.P99 = row.Knee[0].P50, row.Knee[0].P99
	return []Row{row}, nil
}

// kneePoint is the first held rate whose p99 is over twice the floor (the
// p99 of the lowest rate), or -1.
func kneePoint(pts []Trial) int {
	if len(pts) == 0 || pts[0].P99 <= 0 {
		return -1
	}
	for i, t := range pts {
		if !t.Held || t.P99 > 2*pts[0].P99 {
			return i
		}
	}
	return -1
}

func kneeCheck(o *Outcome) []string {
	if len(o.Rows) == 0 || len(o.Rows[0].Knee) == 0 {
		return []string{"no rate was measured"}
	}
	pts := o.Rows[0].Knee
	var fails []string
	if pts[0].P99 <= 0 || !pts[0].Held {
		fails = append(fails, fmt.Sprintf("the lowest rate, %.0f/s, was not held: no floor to measure the knee from", pts[0].RateRPS))
	}
	if pts[len(pts)-1].Held {
		fails = append(fails, "the sweep never reached saturation")
	}
	if kneePoint(pts) < 0 {
		fails = append(fails, "p99 never left its floor by 2×")
	}
	return fails
}

func kneeVerdict(rows []Row) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	pts := rows[0].Knee
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tachieved/s\tp50 ms\tp99 ms\tmachine cores\t\t")
	for _, t := range pts {
		p50, p99, mark := fmt.Sprintf("%.2f", t.P50), fmt.Sprintf("%.2f", t.P99), ""
		if !t.Held {
			p50, p99, mark = "-", "-", "SATURATED: "+t.Why
		}
		fmt.Fprintf(tw, "%.0f\t%.1f\t%s\t%s\t%.2f\t%s\t\n", t.RateRPS, t.AchievedRPS, p50, p99, t.MachineCores, mark)
	}
	tw.Flush()
	if k := kneePoint(pts); k >= 0 {
		fmt.Fprintf(&b, "knee: %.0f/s, the first rate whose p99 left the %.2f ms floor by 2× (or that was not held); the highest rate held was %.0f/s\n",
			pts[k].RateRPS, pts[0].P99, rows[0].Capacity)
	}
	return b.String()
}

// KneeChart plots latency against achieved throughput.
func (o *Outcome) KneeChart() string {
	if o.Name != "knee" || len(o.Rows) == 0 {
		return ""
	}
	var p50, p99 report.Series
	p50.Name, p99.Name = "p50", "p99"
	for _, t := range o.Rows[0].Knee {
		if t.Held {
			p50.Points = append(p50.Points, [2]float64{t.AchievedRPS, t.P50})
			p99.Points = append(p99.Points, [2]float64{t.AchievedRPS, t.P99})
		}
	}
	return report.LineChart("knee: latency against achieved throughput", "achieved req/s", "latency (ms)", []report.Series{p50, p99}, nil)
}
