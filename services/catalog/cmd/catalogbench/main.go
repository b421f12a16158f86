// Command catalogbench measures the catalog's read path directly (no
// gateway): the bare /healthz, product by id and a list page, each with the
// memcached cache and without it, and prints throughput, p50/p99 and the
// ratios the catalog's targets are stated in.
//
//	catalogbench -stack .state/test/stack.json -rounds 8 -round 2s -c 16
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
// The load is a closed loop at fixed concurrency. Configurations alternate
// in short rounds, in a rotating order, so the noise of a shared machine
// falls on all of them alike; the ratios come from one run. Besides the
// throughput it reports the CPU each catalog process spent per request
// (from /proc), which a busy machine disturbs much less.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"

	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
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
	stack       *topology.Manifest
	bin         string
	uncached    string // "clone" (own cache-off process) or "header"
	portBase    int
	rounds      int
	round       time.Duration
	concurrency int
	products    int
	sample      string
	only        []string
	pprof       bool
	client      string // "raw" or "nethttp"
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
	fs.IntVar(&o.concurrency, "c", 16, "concurrent requests (closed loop)")
	fs.IntVar(&o.products, "products", 1000, "product ids read (1..n), warmed first")
	fs.StringVar(&o.sample, "sample", "", "OTEL_TRACES_SAMPLER_ARG of the processes it starts (default: inherited, the production default 1.0)")
	fs.StringVar(&o.client, "client", "raw", `"raw": a minimal keep-alive HTTP/1.1 client (less than half of net/http's CPU per request, so the generator disturbs the catalog less); "nethttp": net/http's client`)
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
	if o.client != "raw" && o.client != "nethttp" {
		return o, fmt.Errorf("-client %q: want raw or nethttp", o.client)
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
	elapsed                 time.Duration
	cpu                     time.Duration
	lat                     []time.Duration
	roundRate               []float64
}

var categories = []string{"books", "electronics", "garden", "kitchen", "toys", "sports", "music", "movies", "games", "tools",
	"beauty", "health", "automotive", "office", "pets", "baby", "grocery", "jewelry", "shoes", "outdoor"}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, getenv)
	if err != nil {
		return err
	}
	hc := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 4 * o.concurrency, MaxIdleConnsPerHost: 2 * o.concurrency,
			IdleConnTimeout: time.Minute, DisableCompression: true},
		Timeout: 10 * time.Second,
	}

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

	fmt.Fprintf(stdout, "catalogbench: uncached=%s, client=%s, %d rounds × %s per configuration, %d concurrent requests, %d products, sampling %s\n",
		o.uncached, o.client, o.rounds, o.round, o.concurrency, o.products, sampling(o, getenv))
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	start := time.Now()
	for r := range o.rounds {
		for i := range configs {
			c := configs[(i+r)%len(configs)]
			if err := c.runRound(ctx, hc, o); err != nil {
				return err
			}
		}
	}
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	report(stdout, configs, cpuOf(self1)-cpuOf(self0), time.Since(start))
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

// runRound runs o.concurrency closed-loop workers for o.round.
func (c *config) runRound(ctx context.Context, hc *http.Client, o options) error {
	cpu0 := procCPU(c.pid)
	ctx, cancel := context.WithTimeout(ctx, o.round)
	defer cancel()
	type result struct {
		lat               []time.Duration
		errs, wrongSource int
	}
	results := make([]result, o.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), uint64(w)))
			res := &results[w]
			get := netHTTPGetter(ctx, hc, c.header)
			if o.client == "raw" {
				raw := newRawGetter(c.header)
				defer raw.close()
				get = raw.get
			}
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				status, from, err := get(c.targets[(w+i)%len(c.targets)], c.path(r))
				d := time.Since(t0)
				if ctx.Err() != nil {
					break // cut off by the end of the round
				}
				if err != nil || status != http.StatusOK {
					res.errs++
					continue
				}
				res.lat = append(res.lat, d)
				if (c.want == "cache" && from != "cache") || (c.want == "!cache" && (from == "cache" || from == "")) {
					res.wrongSource++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := 0
	for _, res := range results {
		n += len(res.lat)
		c.lat = append(c.lat, res.lat...)
		c.errs += res.errs
		c.wrongSource += res.wrongSource
	}
	c.reqs += n
	c.elapsed += elapsed
	c.cpu += procCPU(c.pid) - cpu0
	c.roundRate = append(c.roundRate, float64(n)/elapsed.Seconds())
	return nil
}

func (c *config) rate() float64 { return float64(c.reqs) / c.elapsed.Seconds() }

func (c *config) pct(p float64) time.Duration {
	if len(c.lat) == 0 {
		return 0
	}
	slices.Sort(c.lat)
	return c.lat[min(len(c.lat)-1, int(p*float64(len(c.lat))))]
}

func report(w io.Writer, configs []*config, genCPU, total time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration\treq/s\tmin round\tmax round\tp50\tp99\tserver CPU/req\terrors\tnot from expected source\t")
	by := map[string]*config{}
	for _, c := range configs {
		by[c.name] = c
		cpu := "-"
		if c.pid != 0 && c.reqs > 0 {
			cpu = (c.cpu / time.Duration(c.reqs)).Round(100 * time.Nanosecond).String()
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%d\t%d\t\n", c.name, c.rate(), slices.Min(c.roundRate), slices.Max(c.roundRate),
			c.pct(0.50).Round(10*time.Microsecond), c.pct(0.99).Round(10*time.Microsecond), cpu, c.errs, c.wrongSource)
	}
	tw.Flush()
	ratio := func(a, b string) string {
		x, y := by[a], by[b]
		if x == nil || y == nil {
			return "-"
		}
		s := fmt.Sprintf("%.2f×", x.rate()/y.rate())
		// The same ratio per round shows how much the machine's noise moved it.
		var per []float64
		for i := range min(len(x.roundRate), len(y.roundRate)) {
			per = append(per, x.roundRate[i]/y.roundRate[i])
		}
		if len(per) > 0 {
			s += fmt.Sprintf(" (per round %.2f–%.2f)", slices.Min(per), slices.Max(per))
		}
		if x.pid != 0 && y.pid != 0 && x.reqs > 0 && y.reqs > 0 {
			cx := float64(x.cpu) / float64(x.reqs)
			cy := float64(y.cpu) / float64(y.reqs)
			s += fmt.Sprintf("; server CPU per request %.2f×", cx/cy)
		}
		return s
	}
	fmt.Fprintf(w, "\nlist cached / uncached:        %s   target ≥ 3×\n", ratio("list cached", "list uncached"))
	fmt.Fprintf(w, "product cached / healthz:      %s   target ≥ 0.8×\n", ratio("product cached", "healthz"))
	fmt.Fprintf(w, "product cached / uncached:     %s\n", ratio("product cached", "product uncached"))
	fmt.Fprintf(w, "floor product / floor healthz: %s   the same request path over a free in-process cache: the best any cache could do\n",
		ratio("floor product", "floor healthz"))
	fmt.Fprintf(w, "\nload generator CPU: %s over %s of wall time (%.0f%% of one core)\n",
		genCPU.Round(time.Millisecond), total.Round(time.Millisecond), 100*genCPU.Seconds()/total.Seconds())
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

// A getter sends GET base+path and returns the status and X-Served-From.
type getter func(base, path string) (status int, servedFrom string, err error)

func netHTTPGetter(ctx context.Context, hc *http.Client, header http.Header) getter {
	buf := make([]byte, 32<<10)
	return func(base, path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		if _, err := io.CopyBuffer(io.Discard, resp.Body, buf); err != nil {
			return 0, "", err
		}
		return resp.StatusCode, resp.Header.Get("X-Served-From"), nil
	}
}

// rawGetter is a minimal HTTP/1.1 keep-alive client: one connection per
// target, the request written in one call, the response's status line and
// headers scanned for what the bench needs and the body skipped. It reads
// Content-Length and chunked bodies, which is all the catalog sends.
type rawGetter struct {
	extra string // extra request header lines
	conns map[string]*rawConn
	req   []byte
}

type rawConn struct {
	c    net.Conn
	r    *bufio.Reader
	host string
}

func newRawGetter(header http.Header) *rawGetter {
	var b strings.Builder
	for k, vs := range header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return &rawGetter{extra: b.String(), conns: map[string]*rawConn{}}
}

func (g *rawGetter) close() {
	for _, rc := range g.conns {
		rc.c.Close()
	}
}

func (g *rawGetter) get(base, path string) (int, string, error) {
	rc, err := g.conn(base)
	if err != nil {
		return 0, "", err
	}
	status, from, err := g.roundTrip(rc, path)
	if err != nil {
		rc.c.Close()
		delete(g.conns, base)
	}
	return status, from, err
}

func (g *rawGetter) conn(base string) (*rawConn, error) {
	if rc, ok := g.conns[base]; ok {
		return rc, nil
	}
	host := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c, r: bufio.NewReaderSize(c, 16<<10), host: host}
	g.conns[base] = rc
	return rc, nil
}

func (g *rawGetter) roundTrip(rc *rawConn, path string) (int, string, error) {
	g.req = append(g.req[:0], "GET "...)
	g.req = append(g.req, path...)
	g.req = append(g.req, " HTTP/1.1\r\nHost: "...)
	g.req = append(g.req, rc.host...)
	g.req = append(g.req, "\r\n"...)
	g.req = append(g.req, g.extra...)
	g.req = append(g.req, "\r\n"...)
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Write(g.req); err != nil {
		return 0, "", err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, "", err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 {
		return 0, "", fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, "", fmt.Errorf("bad status line %q", line)
	}
	length, chunked, from := -1, false, ""
	for {
		line, end, err := headerLine(rc.r)
		if err != nil {
			return 0, "", err
		}
		if end {
			break
		}
		k, v, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("X-Served-From")):
			from = string(v)
		}
	}
	switch {
	case status == http.StatusNotModified || status == http.StatusNoContent:
	case chunked:
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(rc.r)); err != nil {
			return 0, "", err
		}
		for { // the trailer section, up to its blank line
			if _, end, err := headerLine(rc.r); err != nil {
				return 0, "", err
			} else if end {
				break
			}
		}
	case length >= 0:
		if _, err := rc.r.Discard(length); err != nil {
			return 0, "", err
		}
	default:
		return 0, "", errors.New("a response without a length")
	}
	return status, from, nil
}

// headerLine reads one header or trailer line; end is true for the blank
// line that ends the section.
func headerLine(r *bufio.Reader) (line []byte, end bool, err error) {
	line, err = r.ReadSlice('\n')
	return line, err == nil && len(line) <= 2, err
}
