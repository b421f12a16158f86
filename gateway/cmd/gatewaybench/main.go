// Command gatewaybench measures the gateway against its peers as load
// balancers over the same two catalog clones of a running stack: Debian's
// nginx, Debian's Caddy 2.6, and the floor, a bare httputil.ReverseProxy at
// the gateway's GOGC (floor.go), with the clones hit directly as the
// baseline. gateway/bench/run.sh installs nginx and caddy when missing and
// runs it.
//
//	go run ./gateway/cmd/gatewaybench -stack .state/test/stack.json -gateway .state/bin/gateway
//
// The robust number on a shared machine is CPU per proxied request: each
// proxy runs pinned to one core and the load generator to the other while
// it is read, every target gets the same rates in a random order, and each
// measurement is repeated (3 times by default); the summary gives the
// median and the spread. The load is the project's one load engine
// (loadtest/engine): latency from each request's intended send time, so a
// stalled server shows up as latency instead of as fewer requests sent;
// failures counted apart; a step a target could not hold is reported
// saturated, without percentiles.
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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"

	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/loadtest/engine"
)

func main() {
	lifecycle.Main("gatewaybench", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		if spec := getenv(floorEnv); spec != "" {
			return serveFloor(ctx, spec)
		}
		return run(ctx, getenv, stdout)
	})
}

type target struct {
	name  string
	bases []string // request i goes to bases[i % len]
	pids  func() []int
}

// run measures every target at every step; Ctrl-C stops it between
// requests, and the processes it started are stopped on the way out.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	stackPath := flag.String("stack", getenv("SCALESHOP_STACK"), "stack.json of a running stack")
	gatewayBin := flag.String("gateway", "", "the gateway binary (default: bin/gateway next to the stack's state)")
	rates := flag.String("rates", "1000,2000", "open-model rates, requests/s; each target is measured at each")
	repeats := flag.Int("repeats", 3, "measurements of each target at each rate, in a random order each round")
	step := flag.Duration("step", 5*time.Second, "duration of each step")
	workers := flag.Int("workers", 512, "most requests in flight from the load generator")
	path := flag.String("path", "/api/products/%d", "request path; %d cycles through product ids 1..100")
	sample := flag.String("trace-sample", "0.01", "the gateway's OTEL_TRACES_SAMPLER_ARG (1 traces every request)")
	asIs := flag.Bool("backends-as-is", false, "load the stack's catalog clones as they run, instead of restarting them unbounded with the gateway's trace sampling")
	profile := flag.String("profile", "", "write a CPU profile of the gateway during its last step to this file")
	var gatewayEnv []string
	flag.Func("gateway-env", "K=V added to the gateway's environment (repeatable), e.g. GOMAXPROCS=1 or GATEWAY_CATALOG_POLICY=round_robin", func(kv string) error {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("%q is not K=V", kv)
		}
		gatewayEnv = append(gatewayEnv, kv)
		return nil
	})
	flag.Parse()
	m, err := topology.ReadManifest(*stackPath)
	if err != nil {
		return fmt.Errorf("need a running stack (-stack): %w", err)
	}
	if *asIs {
		fmt.Fprintln(stdout, "backends: the stack's catalog clones as they run (quota and tracing included)")
	} else {
		restore, err := benchBackends(m, *sample)
		defer restore()
		if err != nil {
			return fmt.Errorf("restarting the clones as benchmark backends: %w", err)
		}
		fmt.Fprintf(stdout, "backends: the stack's first two catalog clones, restarted unbounded with trace sampling %s (restored at the end)\n", *sample)
	}
	clones := m.Endpoints.CatalogURLs[:2]
	if *gatewayBin == "" {
		*gatewayBin = filepath.Join(filepath.Dir(filepath.Dir(m.StateDir)), "bin", "gateway")
	}
	var steps []int
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		steps = append(steps, n)
	}
	work, err := os.MkdirTemp("", "gatewaybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if err := pinSelf(generatorCore); err != nil {
		return err
	}
	gwPort, ngPort, floorPort, caddyPort := freePort(), freePort(), freePort(), freePort()
	adminPort := freePort()
	gw, err := startGateway(*gatewayBin, gwPort, adminPort, *sample, clones, m.Endpoints.OTLPEndpoint, work, gatewayEnv)
	if err != nil {
		return err
	}
	defer stop(gw)
	ng, err := startNginx(ngPort, clones, work)
	if err != nil {
		return err
	}
	defer stop(ng)
	floor, err := startFloor(floorPort, clones, work)
	if err != nil {
		return err
	}
	defer stop(floor)
	cd, err := startCaddy(caddyPort, clones, work, proxyCore)
	if err != nil {
		return err
	}
	defer stop(cd)
	base := func(port int) []string { return []string{"http://127.0.0.1:" + strconv.Itoa(port)} }
	targets := []target{
		{name: "direct (2 clones, client-side round robin)", bases: clones},
		{name: "gateway", bases: base(gwPort), pids: func() []int { return []int{gw.Process.Pid} }},
		{name: "nginx", bases: base(ngPort), pids: func() []int { return withChildren(ng.Process.Pid) }},
		{name: "go floor (bare ReverseProxy)", bases: base(floorPort), pids: func() []int { return []int{floor.Process.Pid} }},
		{name: "caddy", bases: base(caddyPort), pids: func() []int { return []int{cd.Process.Pid} }},
	}
	for _, t := range targets {
		if err := waitOK(t.bases[0] + fmt.Sprintf(*path, 1)); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	pin := "not pinned (one core)"
	if pinning() {
		pin = fmt.Sprintf("proxy on core %d, generator on core %d", proxyCore, generatorCore)
	}
	fmt.Fprintf(stdout, "gatewaybench: %s, clones %v, rates %v x %s, %d repeats in random order, up to %d in flight, %d CPUs (%s), gateway trace sampling %s, GOGC %d for the gateway and the floor\n\n",
		*path, clones, steps, *step, *repeats, *workers, numCPU(), pin, *sample, lifecycle.GCPercent)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\ttarget\trate\tachieved\tp50 ms\tp90 ms\tp99 ms\terrors\tproxy CPU µs/req\tgenerator CPU %\tgenerator µs/req\t")
	// results[target][rate index] holds one result per repeat. Each round
	// measures every target at every rate in a new random order, so drift
	// in the machine's state (cache warmth, other load) hits all alike.
	results := map[string][][]result{}
	for _, t := range targets {
		results[t.name] = make([][]result, len(steps))
	}
	for round := 1; round <= *repeats; round++ {
		for i, rate := range steps {
			for _, k := range rand.Perm(len(targets)) {
				t := targets[k]
				var profiled chan error
				if *profile != "" && round == *repeats && i == len(steps)-1 && t.name == "gateway" {
					profiled = make(chan error, 1)
					go func() { profiled <- fetchProfile(adminPort, *step, *profile) }()
				}
				r := measure(ctx, t, *path, rate, *step, *workers)
				if err := ctx.Err(); err != nil {
					return err // Ctrl-C: the deferred calls restore the clones and stop the proxies
				}
				if profiled != nil {
					if err := <-profiled; err != nil {
						return err
					}
				}
				results[t.name][i] = append(results[t.name][i], r)
				lat := fmt.Sprintf("%.2f\t%.2f\t%.2f", ms(r.p50), ms(r.p90), ms(r.p99))
				if r.saturated {
					lat = "saturated\t-\t-"
				}
				fmt.Fprintf(w, "%d\t%s\t%d\t%.0f\t%s\t%d\t%s\t%.0f\t%.0f\t\n", round, t.name, rate, r.achieved,
					lat, r.errors, cpuPerReq(r), r.genCPU*100, r.genUSPerReq)
			}
			w.Flush()
		}
	}
	fmt.Fprintln(stdout)
	return summarize(stdout, targets, steps, results)
}

type result struct {
	rate          int
	achieved      float64
	p50, p90, p99 time.Duration
	errors        int64
	saturated     bool // achieved < 99 % of the rate, or the run stopped: no percentiles
	proxyCPU      time.Duration
	genCPU        float64 // the generator's CPU over one step's wall time, all cores
	genUSPerReq   float64
	ok            int64
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuPerReq(r result) string {
	if r.proxyCPU == 0 || r.ok == 0 {
		return "-"
	}
	return strconv.FormatFloat(cpuUS(r), 'f', 0, 64)
}

// cpuUS is the proxy's CPU per successful request, in µs.
func cpuUS(r result) float64 {
	if r.ok == 0 {
		return 0
	}
	return float64(r.proxyCPU.Microseconds()) / float64(r.ok)
}

// transport is shared by every step and target: connections stay warm
// between steps, as a real client's would.
var transport = engine.NewTransport(4096)

var client = &http.Client{Transport: transport, Timeout: 5 * time.Second}

// measure sends rate requests/s for d with the load engine (open model,
// latency from each request's intended send time, failures apart).
func measure(ctx context.Context, t target, path string, rate int, d time.Duration, workers int) result {
	sched, err := engine.NewSchedule([]engine.Stage{{Name: "step", From: float64(rate), To: float64(rate), Duration: d}})
	if err != nil {
		panic(err) // rate and d were checked when parsed
	}
	next := 0 // the pacer calls Next one call at a time
	cpu0 := procCPU(t.pids)
	res, err := engine.Run(ctx, engine.Config{
		Schedule: sched, Names: []string{"get"}, MaxWorkers: uint64(workers), Timeout: 5 * time.Second, Transport: transport,
		Next: func() engine.Request {
			i := next
			next++
			return engine.Request{Method: http.MethodGet, URL: t.bases[i%len(t.bases)] + fmt.Sprintf(path, 1+i%100)}
		},
	})
	if err != nil {
		panic(err)
	}
	st := res.Stages[0]
	r := result{rate: rate, achieved: st.AchievedRPS, errors: res.Total.Errors, ok: res.Total.Count,
		saturated: st.Saturated || res.Aborted != "", genUSPerReq: res.Generator.CPUPerRequestUS}
	if !r.saturated {
		r.p50, r.p90, r.p99 = dur(res.Total.P50), dur(res.Total.P90), dur(res.Total.P99)
	}
	if t.pids != nil {
		r.proxyCPU = procCPU(t.pids) - cpu0
	}
	if res.WallS > 0 {
		r.genCPU = res.Generator.CPUSeconds / res.WallS / float64(res.Generator.Cores)
	}
	return r
}

func dur(msec float64) time.Duration { return time.Duration(msec * float64(time.Millisecond)) }

func fetchProfile(adminPort int, d time.Duration, file string) error {
	secs := max(int(d.Seconds())-1, 1)
	c := &http.Client{Timeout: d + 10*time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", adminPort, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

func get(url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}

func waitOK(url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if get(url) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("GET " + url + " did not answer 200")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startGateway(bin string, port, adminPort int, sample string, clones []string, otlp, work string, extraEnv []string) (*exec.Cmd, error) {
	cmd := pinned(proxyCore, bin)
	cmd.Env = append(os.Environ(),
		"GATEWAY_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"GATEWAY_ADMIN_ADDR=127.0.0.1:"+strconv.Itoa(adminPort),
		"OTEL_TRACES_SAMPLER_ARG="+sample,
		"CATALOG_URLS="+strings.Join(clones, ","),
		"ORDERS_URLS="+strings.Join(clones, ","), // unused here
		"SERVICE_INSTANCE_ID=gateway-bench",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+otlp,
		// One client IP sends everything: a per-IP limit would measure the
		// limiter, not the proxy.
		"GATEWAY_RATE_LIMIT=0",
	)
	cmd.Env = append(cmd.Env, extraEnv...) // later entries win
	log, err := os.Create(filepath.Join(work, "gateway.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, cmd.Start()
}

// startNginx runs Debian's nginx as a load balancer with keepalive
// upstreams, the configuration a careful operator would write.
func startNginx(port int, clones []string, work string) (*exec.Cmd, error) {
	var servers strings.Builder
	for _, c := range clones {
		fmt.Fprintf(&servers, "    server %s;\n", strings.TrimPrefix(c, "http://"))
	}
	workers := "auto"
	if pinning() {
		workers = "1" // one core: auto would start one per core of the machine
	}
	conf := fmt.Sprintf(`worker_processes %[4]s;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream catalog {
%[2]s    keepalive 512;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://catalog;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, work, servers.String(), port, workers)
	path := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	cmd := pinned(proxyCore, bin, "-c", path, "-p", work, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd, cmd.Start()
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// procCPU sums the user+system CPU of pids, from /proc.
func procCPU(pids func() []int) time.Duration {
	if pids == nil {
		return 0
	}
	var total time.Duration
	for _, pid := range pids() {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		stat, err := p.Stat()
		if err != nil {
			continue // the process ended meanwhile
		}
		total += time.Duration(stat.CPUTime() * float64(time.Second))
	}
	return total
}

func withChildren(pid int) []int {
	out := []int{pid}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
