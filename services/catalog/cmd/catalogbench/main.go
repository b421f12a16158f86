// Command catalogbench measures the catalog's read path directly (no
// gateway): the bare /healthz, product by id and a list page, each with the
// memcached cache and without it, as the capacity of a catalog process under
// a CPU quota, and prints the ratios the catalog's targets are stated in.
//
//	catalogbench -stack .state/test/stack.json -cpus 0.1 -repeats 3
//
// By default it starts its own two catalog processes from the same binary
// (-bin, default the stack's build) against the stack's Postgres and
// memcached, identical but for CATALOG_CACHE_ENABLED: "cached" is the
// production read path, "uncached" has the cache left out. -uncached header
// instead measures the stack's own clones (at their own quotas), uncached
// reads sending Cache-Control: no-cache (the store's same database path,
// without restarting anything).
//
// A third process, the floor (floor.go), runs the catalog's own request
// path over a cache that costs nothing; its product read against its
// /healthz is the best ratio any cache design could give.
//
// A configuration's capacity is the highest rate its process holds (every
// request answered, p99 within -p99, the rate achieved) under a quota of
// -cpus cores, found by bisection with the project's load engine
// (loadtest/engine). Each process sits in a CPU cgroup of its own from its
// first instruction, so its capacity is what its quota buys, whatever else
// the machine's cores are doing. (Comparing CPU per request at one fixed
// rate, as this bench did before, measures the wake-up each lone request
// costs a process that is mostly idle: on this machine /healthz cost 280 µs
// a request at 400/s and 74 µs at 6400/s, and the ratios came out at half
// what the processes serve.) The configurations' repeats run in a random
// order, so the machine's drift falls on all of them alike.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/loadtest/engine"
)

func main() {
	if dir := os.Getenv(cgroupEnv); dir != "" {
		// The re-exec of startProc: become the process it starts, inside
		// its cgroup (cpuquota.Exec), so that the Go runtime sizes itself
		// for the quota and not for the machine.
		os.Unsetenv(cgroupEnv)
		err := cpuquota.Exec(dir, os.Args[1:])
		fmt.Fprintln(os.Stderr, "catalogbench:", err)
		os.Exit(1)
	}
	if os.Getenv(floorEnv) != "" {
		lifecycle.Main("catalogbench-floor", serveFloor)
		return
	}
	lifecycle.Main("catalogbench", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

// cgroupEnv carries the cgroup directory to the re-exec that moves a
// process it starts into its cgroup.
const cgroupEnv = "CATALOGBENCH_CGROUP"

type options struct {
	stack    *topology.Manifest
	bin      string
	uncached string // "clone" (own cache-off process) or "header"
	portBase int
	cpus     float64
	repeats  int
	hold     time.Duration
	bound    time.Duration
	start    float64
	products int
	sample   float64
	only     []string
	pprof    bool
}

func parse(args []string, getenv func(string) string) (options, error) {
	fs := flag.NewFlagSet("catalogbench", flag.ContinueOnError)
	stack := fs.String("stack", getenv("SCALESHOP_STACK"), "stack.json of the running stack")
	o := options{}
	fs.StringVar(&o.bin, "bin", "", "catalog binary for the processes it starts (default: the stack's build, <state_dir>/bin/catalog)")
	fs.StringVar(&o.uncached, "uncached", "clone", `"clone": start a cached and a cache-off catalog; "header": use the stack's clones, uncached reads send Cache-Control: no-cache`)
	fs.IntVar(&o.portBase, "port", 0, "first of the four ports of the processes it starts (default: the stack's first catalog port + 400; keep below 32768)")
	// 0.1 cores: small enough that a process's capacity on /healthz, its
	// cheapest read, stays within what the generator sends from the other
	// core (a few thousand a second), as in the clones experiment.
	fs.Float64Var(&o.cpus, "cpus", 0.1, "CPU quota of each process it starts, in cores")
	fs.IntVar(&o.repeats, "repeats", 3, "capacity searches per configuration, in a random order")
	fs.DurationVar(&o.hold, "hold", 2*time.Second, "length of one trial at a rate (after a quarter of it as warm-up)")
	fs.DurationVar(&o.bound, "p99", 250*time.Millisecond, "p99 bound a rate must stay within to count as held")
	fs.Float64Var(&o.start, "start", 200, "first rate a search tries, in requests per second")
	fs.IntVar(&o.products, "products", 1000, "product ids read (1..n), warmed first")
	fs.Float64Var(&o.sample, "sample", 0.01, "trace sampling ratio: catalogbench roots each request's trace and the processes follow, as ordersbench and the capacity experiments do (-1: the processes' own ratio, OTEL_TRACES_SAMPLER_ARG, default 1.0)")
	only := fs.String("only", "", "comma-separated configurations to run (default all)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve pprof from the cached process on 127.0.0.1:<port+2> (PPROF_ADDR)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *only != "" {
		o.only = strings.Split(*only, ",")
	}
	if *stack == "" {
		return o, errors.New("-stack (or SCALESHOP_STACK) is required")
	}
	m, err := topology.ReadManifest(*stack)
	if err != nil {
		return o, err
	}
	if m.Status != "ready" {
		return o, fmt.Errorf("the stack in %s is %q, not ready", *stack, m.Status)
	}
	o.stack = m
	if o.bin == "" {
		o.bin = filepath.Join(m.StateDir, "bin", "catalog")
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return o, err
	}
	if o.cpus < cpuquota.MinCores {
		return o, fmt.Errorf("-cpus %g: want at least %g cores", o.cpus, cpuquota.MinCores)
	}
	if o.repeats < 1 || o.hold <= 0 || o.bound <= 0 || o.start < 1 {
		return o, errors.New("-repeats, -hold, -p99 and -start must be positive")
	}
	if o.uncached != "clone" && o.uncached != "header" {
		return o, fmt.Errorf("-uncached %q: want clone or header", o.uncached)
	}
	if o.portBase == 0 && len(m.Endpoints.CatalogURLs) > 0 {
		u, err := url.Parse(m.Endpoints.CatalogURLs[0])
		if err != nil {
			return o, err
		}
		p, _ := strconv.Atoi(u.Port())
		o.portBase = p + 400
	}
	if o.portBase <= 0 || o.portBase+floorPortOffset >= 32768 {
		return o, fmt.Errorf("-port %d: want a port below %d", o.portBase, 32768-floorPortOffset)
	}
	return o, nil
}

// A configuration is one kind of request against one target.
type config struct {
	name    string
	targets []string
	path    func(r *rand.Rand) string
	header  http.Header
	want    string  // expected X-Served-From; "" for /healthz, "!cache" for anything but the cache
	pid     int     // the catalog process it loads, for its CPU; 0 if unknown
	quota   float64 // that process's quota in cores; 0 if unknown

	runs []search
}

// search is one capacity search of a configuration.
type search struct {
	capacity float64
	at       trial // the trial at capacity
	missed   trial // the lowest rate missed: what stopped it
	trials   int
}

// trial is one run at a fixed rate.
type trial struct {
	rate, achieved float64
	p50, p99       float64 // ms; 0 when the rate was not held
	held           bool
	why            string
	cores          float64       // the process's CPU use over the trial; 0 if unknown
	cpuPerRequest  time.Duration // the process's CPU per answer, warm-up included
	wrongSource    int64
}

var categories = []string{"books", "electronics", "garden", "kitchen", "toys", "sports", "music", "movies", "games", "tools",
	"beauty", "health", "automotive", "office", "pets", "baby", "grocery", "jewelry", "shoes", "outdoor"}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	// A ratio of 1 (the local stack's) makes every read pay for its spans
	// and their export, which no production edge does; 1 %, as ordersbench
	// and the capacity experiments root, measures the read path itself.
	// It made every read cheaper (a cached list page 97 µs against 134)
	// and the cache's ratios barely moved (docs/benchmarks.md).
	var transport http.RoundTripper = engine.NewTransport(1024)
	if o.sample >= 0 {
		transport = engine.Sampled{Next: transport, Ratio: o.sample}
	}
	hc := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	dir, err := os.MkdirTemp("", "catalogbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h, err := cpuquota.Find()
	if err != nil {
		return fmt.Errorf("catalogbench measures capacity under a CPU quota, and none can be set here: %w", err)
	}
	cgroups, err := h.Prepare(filepath.Join("scaleshop", "catalogbench-"+strconv.Itoa(os.Getpid())))
	if err != nil {
		return fmt.Errorf("catalogbench measures capacity under a CPU quota (run it as root): %w", err)
	}
	// Deferred first, so it runs after every process below has stopped.
	defer func() {
		if err := cgroups.Remove(); err != nil {
			fmt.Fprintln(stdout, err)
		}
	}()
	start := func(name string, bin string, port int, env map[string]string) (*proc, error) {
		g, err := cgroups.Child(name, o.cpus)
		if err != nil {
			return nil, err
		}
		p, err := startProc(bin, dir, name, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), g.Dir, env)
		if err != nil {
			return nil, err
		}
		return p, p.waitReady(ctx, hc)
	}

	var cachedURLs, uncachedURLs []string
	var cachedPID, uncachedPID int
	var noCache http.Header
	switch o.uncached {
	case "header":
		cachedURLs, uncachedURLs = o.stack.Endpoints.CatalogURLs, o.stack.Endpoints.CatalogURLs
		noCache = http.Header{"Cache-Control": {"no-cache"}}
	case "clone":
		for i, cacheOn := range []bool{true, false} {
			name, port := "cached", o.portBase+i
			if !cacheOn {
				name = "uncached"
			}
			p, err := start(name, o.bin, port, catalogEnv(o, port, cacheOn))
			if p != nil {
				defer p.stop()
			}
			if err != nil {
				return err
			}
			if cacheOn {
				cachedURLs, cachedPID = []string{p.url}, p.cmd.Process.Pid
			} else {
				uncachedURLs, uncachedPID = []string{p.url}, p.cmd.Process.Pid
			}
		}
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	floor, err := start("floor", self, o.portBase+floorPortOffset, floorEnvOf(o, cachedURLs[0]))
	if floor != nil {
		defer floor.stop()
	}
	if err != nil {
		return err
	}
	floorURLs, floorPID := []string{floor.url}, floor.cmd.Process.Pid
	quota := func(pid int) float64 {
		if pid == 0 {
			return 0
		}
		return o.cpus
	}

	product := func(r *rand.Rand) string { return "/api/products/" + strconv.Itoa(1+r.IntN(o.products)) }
	list := func(r *rand.Rand) string {
		return "/api/products?limit=20&category=" + categories[r.IntN(len(categories))]
	}
	healthz := func(*rand.Rand) string { return "/healthz" }
	configs := []*config{
		{name: "healthz", targets: cachedURLs, pid: cachedPID, path: healthz},
		{name: "product cached", targets: cachedURLs, pid: cachedPID, path: product, want: "cache"},
		{name: "product uncached", targets: uncachedURLs, pid: uncachedPID, path: product, header: noCache, want: "!cache"},
		{name: "list cached", targets: cachedURLs, pid: cachedPID, path: list, want: "cache"},
		{name: "list uncached", targets: uncachedURLs, pid: uncachedPID, path: list, header: noCache, want: "!cache"},
		{name: "floor healthz", targets: floorURLs, pid: floorPID, path: healthz},
		{name: "floor product", targets: floorURLs, pid: floorPID, path: product, want: "cache"},
	}
	for _, c := range configs {
		c.quota = quota(c.pid)
	}
	if len(o.only) > 0 {
		configs = slices.DeleteFunc(configs, func(c *config) bool { return !slices.Contains(o.only, c.name) })
	}

	// Warm the cache: every product read and every page, on every cached target.
	for _, t := range cachedURLs {
		for id := 1; id <= o.products; id++ {
			if err := warm(ctx, hc, fmt.Sprintf("%s/api/products/%d", t, id)); err != nil {
				return err
			}
		}
		for _, c := range categories {
			if err := warm(ctx, hc, t+"/api/products?limit=20&category="+c); err != nil {
				return err
			}
		}
	}

	fmt.Fprintf(stdout, "catalogbench: uncached=%s, capacity of each process at %s cores (CFS period %s), %d searches per configuration, trials of %s, p99 bound %s, %d products, sampling %s\n",
		o.uncached, cpuquota.FormatCores(o.cpus), cpuquota.PeriodFor(o.cpus), o.repeats, o.hold, o.bound, o.products, sampling(o, getenv))
	var turns []*config
	for _, c := range configs {
		for range o.repeats {
			turns = append(turns, c)
		}
	}
	rand.Shuffle(len(turns), func(i, j int) { turns[i], turns[j] = turns[j], turns[i] })
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	began := time.Now()
	for i, c := range turns {
		from, step := o.start, 2.0
		if n := len(c.runs); n > 0 && c.runs[n-1].capacity > 0 {
			from, step = c.runs[n-1].capacity, 1.25
		}
		fmt.Fprintf(stdout, "-- %d/%d: %s (search %d)\n", i+1, len(turns), c.name, len(c.runs)+1)
		s, err := c.search(ctx, transport, hc, o, from, step, stdout)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		c.runs = append(c.runs, s)
	}
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	if misses := report(stdout, configs, cpuOf(self1)-cpuOf(self0), time.Since(began)); len(misses) > 0 {
		return fmt.Errorf("missed: %s", strings.Join(misses, "; "))
	}
	return nil
}

func sampling(o options, getenv func(string) string) string {
	switch {
	case o.sample >= 0:
		return fmt.Sprintf("%g, rooted by catalogbench (traceparent)", o.sample)
	case o.uncached == "header":
		return "as the stack's clones run (OTEL_TRACES_SAMPLER_ARG of the shell that started the stack, default 1.0)"
	case getenv("OTEL_TRACES_SAMPLER_ARG") != "":
		return getenv("OTEL_TRACES_SAMPLER_ARG")
	}
	return "1.0 (default)"
}

func warm(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("warming %s: %s", u, resp.Status)
	}
	return nil
}

// search finds the configuration's capacity by bisection (engine.Bisect).
func (c *config) search(ctx context.Context, transport http.RoundTripper, hc *http.Client, o options, from, step float64, log io.Writer) (search, error) {
	var s search
	_, err := engine.Bisect(from, step, 0.05, func(rate float64) (bool, error) {
		if err := c.settle(ctx, hc); err != nil {
			return false, err
		}
		t, err := c.trial(ctx, transport, o, rate)
		if err != nil {
			return false, err
		}
		s.trials++
		verdict := "held"
		if !t.held {
			verdict = "missed: " + t.why
		}
		fmt.Fprintf(log, "   %6.0f/s  achieved %7.1f/s  p99 %7.2f ms  process %s cores  %s\n",
			rate, t.achieved, t.p99, coresOf(t), verdict)
		switch {
		case t.held && rate > s.capacity:
			s.capacity, s.at = rate, t
		case !t.held && (s.missed.rate == 0 || rate < s.missed.rate):
			s.missed = t
		}
		return t.held, nil
	})
	fmt.Fprintf(log, "   %s: capacity %.0f/s\n", c.name, s.capacity)
	return s, err
}

func coresOf(t trial) string {
	if t.cores == 0 {
		return "-"
	}
	return strconv.FormatFloat(t.cores, 'f', 3, 64)
}

// settle waits until every target answers /healthz quickly twice in a row:
// a trial past capacity leaves a backlog the next one must not inherit.
func (c *config) settle(ctx context.Context, hc *http.Client) error {
	const fastEnough, limit = 20 * time.Millisecond, 30 * time.Second
	deadline := time.Now().Add(limit)
	for _, t := range c.targets {
		for fast := 0; fast < 2; {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still busy %s after a trial", t, limit)
			}
			began := time.Now()
			if err := warm(ctx, hc, t+"/healthz"); err != nil {
				return err
			}
			if time.Since(began) < fastEnough {
				fast++
			} else {
				fast = 0
			}
		}
	}
	return nil
}

// trial sends rate requests/s for o.hold, after a quarter of that as
// warm-up, with the load engine.
func (c *config) trial(ctx context.Context, transport http.RoundTripper, o options, rate float64) (trial, error) {
	sched, err := engine.NewSchedule([]engine.Stage{
		{Name: "warm-up", From: rate, To: rate, Duration: o.hold / 4, Warmup: true},
		{Name: "hold", From: rate, To: rate, Duration: o.hold},
	})
	if err != nil {
		return trial{}, err
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	i := 0 // the pacer calls Next one call at a time
	var wrong, answered atomic.Int64
	cpu0, began := procCPU(c.pid), time.Now()
	res, err := engine.Run(ctx, engine.Config{
		Schedule: sched, Names: []string{c.name}, MaxWorkers: 512, Transport: transport,
		// A request four times over the bound has failed the trial anyway;
		// giving up on it sooner leaves the next trial less backlog.
		Timeout: 4 * o.bound,
		Next: func() engine.Request {
			req := engine.Request{Method: http.MethodGet, URL: c.targets[i%len(c.targets)] + c.path(r), Header: c.header}
			i++
			return req
		},
		OnResult: func(resp engine.Response) {
			if resp.Failed || resp.Header == nil {
				return
			}
			answered.Add(1)
			from := resp.Header.Get("X-Served-From")
			if (c.want == "cache" && from != "cache") || (c.want == "!cache" && (from == "cache" || from == "")) {
				wrong.Add(1)
			}
		},
	})
	if err != nil {
		return trial{}, err
	}
	cpu, wall := procCPU(c.pid)-cpu0, time.Since(began)
	st := res.Stages[len(res.Stages)-1]
	t := trial{rate: rate, achieved: st.AchievedRPS, wrongSource: wrong.Load()}
	if c.pid != 0 {
		t.cores = cpu.Seconds() / wall.Seconds()
		if n := answered.Load(); n > 0 {
			t.cpuPerRequest = cpu / time.Duration(n)
		}
	}
	switch {
	case res.Aborted != "":
		t.why = res.Aborted
	case st.Saturated:
		t.why = fmt.Sprintf("achieved %.1f %% of the rate", 100*st.AchievedRatio)
	case st.Latency.Errors > 0:
		t.why = fmt.Sprintf("%d errors %v", st.Latency.Errors, st.Errors)
	case time.Duration(st.Latency.P99*float64(time.Millisecond)) > o.bound:
		t.why = fmt.Sprintf("p99 %.1f ms over the bound", st.Latency.P99)
	default:
		t.held = true
	}
	if !st.Saturated {
		t.p50, t.p99 = st.Latency.P50, st.Latency.P99
	}
	return t, nil
}

// capacities are a configuration's searches' results, sorted.
func (c *config) capacities() []float64 {
	var v []float64
	for _, s := range c.runs {
		v = append(v, s.capacity)
	}
	slices.Sort(v)
	return v
}

// median of sorted values (of an even count, the mean of the middle two);
// 0 when there are none.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	return (sorted[(n-1)/2] + sorted[n/2]) / 2
}

// medianSearch is the search whose capacity is closest to the median, for
// the numbers at capacity.
func (c *config) medianSearch() search {
	m := median(c.capacities())
	best := c.runs[0]
	for _, s := range c.runs {
		if math.Abs(s.capacity-m) < math.Abs(best.capacity-m) {
			best = s
		}
	}
	return best
}

// A process that misses a rate while using much less than its quota was
// stopped by something else (the generator, Postgres, the machine): its
// capacity is not what its quota buys, and the ratios would say nothing.
const quotaBound = 0.85

// report prints the table and the ratios, and returns the targets missed.
func report(w io.Writer, configs []*config, genCPU, total time.Duration) (misses []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration\tcapacity/s (median)\tmin\tmax\tp50 ms at capacity\tp99 ms\tCPU/req at capacity\tquota used at capacity\tat the rate missed\tnot from expected source\t")
	by := map[string]*config{}
	for _, c := range configs {
		by[c.name] = c
		caps := c.capacities()
		s := c.medianSearch()
		cpu, used, usedMissed := "-", "-", "-"
		if c.quota > 0 {
			cpu = s.at.cpuPerRequest.Round(100 * time.Nanosecond).String()
			used = fmt.Sprintf("%.0f %%", 100*s.at.cores/c.quota)
			usedMissed = fmt.Sprintf("%.0f %%", 100*s.missed.cores/c.quota)
			for _, r := range c.runs {
				if r.missed.rate > 0 && r.missed.cores < quotaBound*c.quota {
					misses = append(misses, fmt.Sprintf("%s missed %.0f/s using %.0f %% of its quota (%s): the limit was not the process",
						c.name, r.missed.rate, 100*r.missed.cores/c.quota, r.missed.why))
				}
			}
		}
		var wrong int64
		for _, r := range c.runs {
			wrong += r.at.wrongSource
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%d\t\n", c.name, median(caps), caps[0], caps[len(caps)-1],
			s.at.p50, s.at.p99, cpu, used, usedMissed, wrong)
	}
	tw.Flush()
	// The spread of a ratio is its worst and best pairing of two searches:
	// the searches of two configurations ran at different moments, so no
	// pairing is more right than another.
	ratio := func(a, b string) (string, float64) {
		x, y := by[a], by[b]
		if x == nil || y == nil {
			return "-", 0
		}
		cx, cy := x.capacities(), y.capacities()
		if cy[0] == 0 || median(cy) == 0 {
			return "-", 0
		}
		got := median(cx) / median(cy)
		return fmt.Sprintf("%.2f× the capacity (searches paired %.2f–%.2f×)", got, cx[0]/cy[len(cy)-1], cx[len(cx)-1]/cy[0]), got
	}
	target := func(label, a, b string, want float64) {
		s, got := ratio(a, b)
		fmt.Fprintf(w, "%s%s   target ≥ %g×\n", label, s, want)
		if s != "-" && got < want {
			misses = append(misses, fmt.Sprintf("%s / %s %.2f×, target ≥ %g×", a, b, got, want))
		}
	}
	fmt.Fprintln(w)
	target("list cached / uncached:        ", "list cached", "list uncached", 3)
	target("product cached / healthz:      ", "product cached", "healthz", 0.8)
	s, _ := ratio("product cached", "product uncached")
	fmt.Fprintf(w, "product cached / uncached:     %s\n", s)
	s, _ = ratio("floor product", "floor healthz")
	fmt.Fprintf(w, "floor product / floor healthz: %s   the same request path over a free in-process cache: the best any cache could do\n", s)
	fmt.Fprintf(w, "\nload generator CPU: %s over %s of wall time (%.0f%% of one core)\n",
		genCPU.Round(time.Millisecond), total.Round(time.Millisecond), 100*genCPU.Seconds()/total.Seconds())
	return misses
}

func cpuOf(r syscall.Rusage) time.Duration {
	return time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime))
}

// procCPU is the user+system CPU time a process has used, from /proc.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	stat, err := p.Stat()
	if err != nil {
		return 0
	}
	return time.Duration(stat.CPUTime() * float64(time.Second))
}

// A catalog process started by the bench.
type proc struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan error
}

// catalogEnv is the environment of a catalog process of the bench on port.
func catalogEnv(o options, port int, cacheOn bool) map[string]string {
	e := o.stack.Endpoints
	env := map[string]string{
		"CATALOG_PRIMARY_DSN":         e.CatalogPrimaryDSN,
		"CATALOG_REPLICA_DSN":         e.CatalogReplicaDSN,
		"MEMCACHED_SERVERS":           strings.Join(e.MemcachedServers, ","),
		"CATALOG_CACHE_ENABLED":       strconv.FormatBool(cacheOn),
		"CATALOG_MIGRATE":             "false",
		"OTEL_SERVICE_NAME":           "catalog",
		"OTEL_EXPORTER_OTLP_ENDPOINT": e.OTLPEndpoint,
		"SCALESHOP_MODE":              "dev",
	}
	if o.pprof && cacheOn {
		env["PPROF_ADDR"] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+2))
	}
	return env
}

// floorPortOffset puts the floor past the cached process's pprof port.
const floorPortOffset = 3

// floorEnvOf is the environment of the floor (floor.go, this program run
// again), its products copied from the catalog at source.
func floorEnvOf(o options, source string) map[string]string {
	env := map[string]string{
		"OTEL_SERVICE_NAME":           "catalog",
		"OTEL_EXPORTER_OTLP_ENDPOINT": o.stack.Endpoints.OTLPEndpoint,
		floorEnv:                      source + " " + strconv.Itoa(o.products),
	}
	return env
}

// startProc runs bin in the cgroup at cgroupDir, listening on addr, with
// env over the inherited environment minus the CATALOG_ settings of the
// shell, logging to dir/name.log. It starts this program again, which
// moves itself into the cgroup and then becomes bin (main), so bin never
// runs outside its quota.
func startProc(bin, dir, name, addr, cgroupDir string, env map[string]string) (*proc, error) {
	if ln, err := net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("%s: %s is taken (choose other ports with -port): %w", name, addr, err)
	} else {
		ln.Close()
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self, bin)
	env = maps.Clone(env)
	env["HTTP_ADDR"] = addr
	env[cgroupEnv] = cgroupDir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); env[k] == "" && !strings.HasPrefix(k, "CATALOG_") && k != "GOMAXPROCS" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *proc) waitReady(ctx context.Context, hc *http.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("catalog on %s exited (%v): %s", p.url, err, b)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := hc.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("catalog on %s not ready within 60 s; log %s", p.url, p.log)
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
