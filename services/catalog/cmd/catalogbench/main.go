// Command catalogbench measures the catalog's read path directly (no
// gateway): the bare /healthz, product by id and a list page, each with the
// memcached cache and without it, and prints throughput, p50/p99 and the
// ratios the catalog's targets are stated in.
//
//	catalogbench -stack .state/test/stack.json -rounds 8 -round 2s -rate 800
//
// By default it starts its own two catalog processes from the same binary
// (-bin, default the stack's build) against the stack's Postgres and
// memcached, identical but for CATALOG_CACHE_ENABLED: "cached" is the
// production read path, "uncached" has the cache left out. -uncached header
// instead measures the stack's own clones, uncached reads sending
// Cache-Control: no-cache (the store's same database path, without
// restarting anything).
//
// A third process, the floor (floor.go), runs the catalog's own request
// path over a cache that costs nothing; its product read against its
// /healthz is the best ratio any cache design could give.
//
// The load is the project's load engine (loadtest/engine) at a fixed
// arrival rate (-rate): latency from each request's intended send time,
// failures apart, a round the target could not hold reported saturated.
// Configurations alternate in short rounds, in a rotating order, so the
// noise of a shared machine falls on all of them alike; the ratios come from
// one run. At a rate every configuration holds, the number that compares is
// the CPU each catalog process spent per request (from /proc), which a busy
// machine disturbs much less than throughput.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/loadtest/engine"
)

func main() {
	if os.Getenv(floorEnv) != "" {
		lifecycle.Main("catalogbench-floor", serveFloor)
		return
	}
	lifecycle.Main("catalogbench", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

type options struct {
	stack    *topology.Manifest
	bin      string
	uncached string // "clone" (own cache-off process) or "header"
	portBase int
	rounds   int
	round    time.Duration
	rate     int
	products int
	sample   string
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
	fs.IntVar(&o.rounds, "rounds", 8, "rounds; each runs every configuration once")
	fs.DurationVar(&o.round, "round", 2*time.Second, "length of one configuration's turn in a round")
	fs.IntVar(&o.rate, "rate", 800, "requests per second of each round (open model)")
	fs.IntVar(&o.products, "products", 1000, "product ids read (1..n), warmed first")
	fs.StringVar(&o.sample, "sample", "", "OTEL_TRACES_SAMPLER_ARG of the processes it starts (default: inherited, the production default 1.0)")
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
	if o.rate <= 0 {
		return o, fmt.Errorf("-rate %d: want a positive rate", o.rate)
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
	want    string // expected X-Served-From; "" for /healthz, "!cache" for anything but the cache
	pid     int    // the catalog process it loads, for CPU per request; 0 if unknown

	reqs, errs, wrongSource int
	saturated               int // rounds not held
	elapsed                 time.Duration
	cpu                     time.Duration
	p50s, p99s              []float64 // each round's, ms
	roundRate               []float64
	roundCPU                []float64 // each round's server CPU per request, µs
}

var categories = []string{"books", "electronics", "garden", "kitchen", "toys", "sports", "music", "movies", "games", "tools",
	"beauty", "health", "automotive", "office", "pets", "baby", "grocery", "jewelry", "shoes", "outdoor"}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	transport := engine.NewTransport(1024)
	hc := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	dir, err := os.MkdirTemp("", "catalogbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cachedURLs, uncachedURLs []string
	var cachedPID, uncachedPID int
	var noCache http.Header
	switch o.uncached {
	case "header":
		cachedURLs, uncachedURLs = o.stack.Endpoints.CatalogURLs, o.stack.Endpoints.CatalogURLs
		noCache = http.Header{"Cache-Control": {"no-cache"}}
	case "clone":
		for i, cacheOn := range []bool{true, false} {
			p, err := startCatalog(ctx, o, getenv, dir, o.portBase+i, cacheOn)
			if err != nil {
				return err
			}
			defer p.stop()
			if err := p.waitReady(ctx, hc); err != nil {
				return err
			}
			if cacheOn {
				cachedURLs, cachedPID = []string{p.url}, p.cmd.Process.Pid
			} else {
				uncachedURLs, uncachedPID = []string{p.url}, p.cmd.Process.Pid
			}
		}
	}

	floor, err := startFloor(o, dir, o.portBase+floorPortOffset, cachedURLs[0])
	if err != nil {
		return err
	}
	defer floor.stop()
	if err := floor.waitReady(ctx, hc); err != nil {
		return err
	}
	floorURLs, floorPID := []string{floor.url}, floor.cmd.Process.Pid

	product := func(r *rand.Rand) string { return "/api/products/" + strconv.Itoa(1+r.IntN(o.products)) }
	list := func(r *rand.Rand) string {
		return "/api/products?limit=20&category=" + categories[r.IntN(len(categories))]
	}
	configs := []*config{
		{name: "healthz", targets: cachedURLs, pid: cachedPID, path: func(*rand.Rand) string { return "/healthz" }},
		{name: "product cached", targets: cachedURLs, pid: cachedPID, path: product, want: "cache"},
		{name: "product uncached", targets: uncachedURLs, pid: uncachedPID, path: product, header: noCache, want: "!cache"},
		{name: "list cached", targets: cachedURLs, pid: cachedPID, path: list, want: "cache"},
		{name: "list uncached", targets: uncachedURLs, pid: uncachedPID, path: list, header: noCache, want: "!cache"},
		{name: "floor healthz", targets: floorURLs, pid: floorPID, path: func(*rand.Rand) string { return "/healthz" }},
		{name: "floor product", targets: floorURLs, pid: floorPID, path: product, want: "cache"},
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

	fmt.Fprintf(stdout, "catalogbench: uncached=%s, %d rounds × %s per configuration at %d req/s (open model), %d products, sampling %s\n",
		o.uncached, o.rounds, o.round, o.rate, o.products, sampling(o, getenv))
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	start := time.Now()
	for r := range o.rounds {
		for i := range configs {
			c := configs[(i+r)%len(configs)]
			if err := c.runRound(ctx, transport, o); err != nil {
				return err
			}
		}
	}
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	if misses := report(stdout, configs, cpuOf(self1)-cpuOf(self0), time.Since(start)); len(misses) > 0 {
		return fmt.Errorf("missed: %s", strings.Join(misses, "; "))
	}
	return nil
}

func sampling(o options, getenv func(string) string) string {
	switch {
	case o.uncached == "header":
		return "as the stack's clones run (OTEL_TRACES_SAMPLER_ARG of the shell that started the stack, default 1.0)"
	case o.sample != "":
		return o.sample
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

// runRound sends o.rate requests/s for o.round with the load engine.
func (c *config) runRound(ctx context.Context, transport http.RoundTripper, o options) error {
	sched, err := engine.NewSchedule([]engine.Stage{{Name: "round", From: float64(o.rate), To: float64(o.rate), Duration: o.round}})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	i := 0 // the pacer calls Next one call at a time
	var wrong atomic.Int64
	cpu0 := procCPU(c.pid)
	res, err := engine.Run(ctx, engine.Config{
		Schedule: sched, Names: []string{c.name}, MaxWorkers: 512, Transport: transport,
		Next: func() engine.Request {
			req := engine.Request{Method: http.MethodGet, URL: c.targets[i%len(c.targets)] + c.path(r), Header: c.header}
			i++
			return req
		},
		OnResult: func(resp engine.Response) {
			if resp.Failed || resp.Header == nil {
				return
			}
			from := resp.Header.Get("X-Served-From")
			if (c.want == "cache" && from != "cache") || (c.want == "!cache" && (from == "cache" || from == "")) {
				wrong.Add(1)
			}
		},
	})
	if err != nil {
		return err
	}
	cpu := procCPU(c.pid) - cpu0
	st := res.Stages[0]
	n := int(res.Total.Count)
	c.reqs += n
	c.errs += int(res.Total.Errors)
	c.wrongSource += int(wrong.Load())
	c.elapsed += time.Duration(st.DurationS * float64(time.Second))
	c.cpu += cpu
	c.roundRate = append(c.roundRate, st.AchievedRPS)
	if n > 0 {
		c.roundCPU = append(c.roundCPU, float64(cpu.Microseconds())/float64(n))
	}
	if st.Saturated || res.Aborted != "" {
		c.saturated++
		return nil
	}
	c.p50s = append(c.p50s, res.Total.P50)
	c.p99s = append(c.p99s, res.Total.P99)
	return nil
}

func (c *config) rate() float64 { return float64(c.reqs) / c.elapsed.Seconds() }

// median of the rounds' values; 0 when there are none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// report prints the table and the ratios, and returns the targets missed.
func report(w io.Writer, configs []*config, genCPU, total time.Duration) (misses []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration\tachieved/s\tmin round\tmax round\tp50 ms (median round)\tp99 ms\tsaturated rounds\tserver CPU/req\terrors\tnot from expected source\t")
	by := map[string]*config{}
	for _, c := range configs {
		by[c.name] = c
		cpu := "-"
		if c.pid != 0 && c.reqs > 0 {
			cpu = (c.cpu / time.Duration(c.reqs)).Round(100 * time.Nanosecond).String()
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%s\t%d\t%d\t\n", c.name, c.rate(), slices.Min(c.roundRate), slices.Max(c.roundRate),
			median(c.p50s), median(c.p99s), c.saturated, cpu, c.errs, c.wrongSource)
	}
	tw.Flush()
	// At one arrival rate that every configuration holds, what compares is
	// the work: server CPU per request, the inverse of the capacity a core
	// gives. The same ratio per round shows how much the machine's noise
	// moved it.
	ratio := func(a, b string) (string, float64) {
		x, y := by[a], by[b]
		if x == nil || y == nil || x.pid == 0 || y.pid == 0 || x.reqs == 0 || y.reqs == 0 {
			return "-", 0
		}
		cx := float64(x.cpu) / float64(x.reqs)
		cy := float64(y.cpu) / float64(y.reqs)
		s := fmt.Sprintf("%.2f× the requests per CPU second", cy/cx)
		var per []float64
		for i := range min(len(x.roundCPU), len(y.roundCPU)) {
			if x.roundCPU[i] > 0 {
				per = append(per, y.roundCPU[i]/x.roundCPU[i])
			}
		}
		if len(per) > 0 {
			s += fmt.Sprintf(" (per round %.2f–%.2f)", slices.Min(per), slices.Max(per))
		}
		if x.saturated > 0 || y.saturated > 0 {
			s += "; some rounds were saturated: lower -rate"
		}
		return s, cy / cx
	}
	target := func(label, a, b string, want float64) {
		s, got := ratio(a, b)
		fmt.Fprintf(w, "%s%s   target ≥ %g×\n", label, s, want)
		if got < want {
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

func startCatalog(ctx context.Context, o options, getenv func(string) string, dir string, port int, cacheOn bool) (*proc, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	name := "cached"
	if !cacheOn {
		name = "uncached"
	}
	e := o.stack.Endpoints
	env := map[string]string{
		"HTTP_ADDR":                   addr,
		"CATALOG_PRIMARY_DSN":         e.CatalogPrimaryDSN,
		"CATALOG_REPLICA_DSN":         e.CatalogReplicaDSN,
		"MEMCACHED_SERVERS":           strings.Join(e.MemcachedServers, ","),
		"CATALOG_CACHE_ENABLED":       strconv.FormatBool(cacheOn),
		"CATALOG_MIGRATE":             "false",
		"OTEL_SERVICE_NAME":           "catalog",
		"OTEL_EXPORTER_OTLP_ENDPOINT": e.OTLPEndpoint,
		"SCALESHOP_MODE":              "dev",
	}
	if o.sample != "" {
		env["OTEL_TRACES_SAMPLER_ARG"] = o.sample
	}
	if o.pprof && cacheOn {
		env["PPROF_ADDR"] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+2))
	}
	return startProc(o.bin, dir, name, addr, env)
}

// floorPortOffset puts the floor past the cached process's pprof port.
const floorPortOffset = 3

// startFloor starts this program again as the floor (floor.go), its
// products copied from the catalog at source.
func startFloor(o options, dir string, port int, source string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env := map[string]string{
		"HTTP_ADDR":                   addr,
		"OTEL_SERVICE_NAME":           "catalog",
		"OTEL_EXPORTER_OTLP_ENDPOINT": o.stack.Endpoints.OTLPEndpoint,
		floorEnv:                      source + " " + strconv.Itoa(o.products),
	}
	if o.sample != "" {
		env["OTEL_TRACES_SAMPLER_ARG"] = o.sample
	}
	return startProc(self, dir, "floor", addr, env)
}

// startProc runs bin with env over the inherited environment, minus the
// CATALOG_ settings of the shell, logging to dir/name.log.
func startProc(bin, dir, name, addr string, env map[string]string) (*proc, error) {
	if ln, err := net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("%s: %s is taken (choose other ports with -port): %w", name, addr, err)
	} else {
		ln.Close()
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); env[k] == "" && !strings.HasPrefix(k, "CATALOG_") {
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
