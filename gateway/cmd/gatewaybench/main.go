// Command gatewaybench measures the gateway against nginx as load balancers
// over the same two catalog clones of a running stack, with the same
// open-model load at the same rate steps, against the clones hit directly,
// and against the floor: a bare httputil.ReverseProxy (floor.go). gateway/bench/run.sh installs nginx when missing and runs it.
//
//	go run ./gateway/cmd/gatewaybench -stack .state/test/stack.json -gateway .state/bin/gateway
//
// Latency is measured from each request's intended send time, so a stalled
// server shows up as latency instead of as fewer requests sent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	rates := flag.String("rates", "1000,2000,3000,4000,5000,6000,7000,8000", "open-model rate steps, requests/s")
	step := flag.Duration("step", 5*time.Second, "duration of each step")
	workers := flag.Int("workers", 512, "most requests in flight from the load generator")
	path := flag.String("path", "/api/products/%d", "request path; %d cycles through product ids 1..100")
	sample := flag.String("trace-sample", "0.01", "the gateway's OTEL_TRACES_SAMPLER_ARG (1 traces every request)")
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

	gwPort, ngPort, floorPort := freePort(), freePort(), freePort()
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
	base := func(port int) []string { return []string{"http://127.0.0.1:" + strconv.Itoa(port)} }
	targets := []target{
		{name: "direct (2 clones, client-side round robin)", bases: clones},
		{name: "gateway", bases: base(gwPort), pids: func() []int { return []int{gw.Process.Pid} }},
		{name: "nginx", bases: base(ngPort), pids: func() []int { return withChildren(ng.Process.Pid) }},
		{name: "go floor (bare ReverseProxy)", bases: base(floorPort), pids: func() []int { return []int{floor.Process.Pid} }},
	}
	for _, t := range targets {
		if err := waitOK(t.bases[0] + fmt.Sprintf(*path, 1)); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	fmt.Fprintf(stdout, "gatewaybench: %s, clones %v, steps %v x %s, up to %d in flight, %d CPUs, gateway trace sampling %s\n\n",
		*path, clones, steps, *step, *workers, numCPU(), *sample)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\trate\tachieved\tp50 ms\tp90 ms\tp99 ms\terrors\tproxy CPU µs/req\tgenerator CPU %\t")
	results := map[string][]result{}
	// Interleave targets at each step, so drift in the machine's state
	// (cache warmth, other load) hits all of them alike.
	for i, rate := range steps {
		for _, t := range targets {
			var profiled chan error
			if *profile != "" && i == len(steps)-1 && t.name == "gateway" {
				profiled = make(chan error, 1)
				go func() { profiled <- fetchProfile(adminPort, *step, *profile) }()
			}
			r := measure(ctx, t, *path, rate, *step, *workers)
			if err := ctx.Err(); err != nil {
				return err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return err
				}
			}
			results[t.name] = append(results[t.name], r)
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%.0f\t\n", t.name, rate, r.achieved,
				ms(r.p50), ms(r.p90), ms(r.p99), r.errors, cpuPerReq(r), r.genCPU*100)
		}
		w.Flush()
	}
	fmt.Fprintln(stdout)
	// A target that fails a step and passes a higher one does not sustain
	// the higher rate; it got lucky there. So the maximum is the top of the
	// unbroken run of passing steps from the lowest.
	fmt.Fprintln(stdout, "max throughput with p99 <= 50 ms and no errors, at that step and every lower one:")
	for _, t := range targets {
		best := result{}
		for _, r := range results[t.name] {
			if r.p99 > 50*time.Millisecond || r.errors > 0 || r.achieved < 0.95*float64(r.rate) {
				break
			}
			best = r
		}
		fmt.Fprintf(stdout, "  %-45s %6.0f req/s\n", t.name, best.achieved)
	}
	direct := results[targets[0].name]
	fmt.Fprintln(stdout, "added latency over direct, at each step both kept up with (p50 / p99, ms):")
	for _, t := range targets[1:] {
		var parts []string
		for i, r := range results[t.name] {
			if r.errors == 0 && r.p99 <= 50*time.Millisecond && direct[i].p99 <= 50*time.Millisecond {
				parts = append(parts, fmt.Sprintf("%d: +%.2f / +%.2f", r.rate, ms(r.p50-direct[i].p50), ms(r.p99-direct[i].p99)))
			}
		}
		fmt.Fprintf(stdout, "  %-28s %s\n", t.name, strings.Join(parts, ", "))
	}
	return nil
}

type result struct {
	rate          int
	achieved      float64
	p50, p90, p99 time.Duration
	errors        int
	proxyCPU      time.Duration
	genCPU        float64 // share of one step's wall time, all cores
	ok            int
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuPerReq(r result) string {
	if r.proxyCPU == 0 || r.ok == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(r.proxyCPU.Microseconds())/float64(r.ok), 'f', 0, 64)
}

var client = &http.Client{Transport: &http.Transport{
	MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true,
}, Timeout: 5 * time.Second}

// measure sends rate requests/s for d: request i is due at start + i/rate;
// a fixed set of workers takes due requests, and latency counts from the
// due time.
func measure(ctx context.Context, t target, path string, rate int, d time.Duration, workers int) result {
	n := int(float64(rate) * d.Seconds())
	due := make(chan time.Time, n)
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	errs := 0
	var wg sync.WaitGroup
	cpu0 := procCPU(t.pids)
	self0 := selfCPU()
	start := time.Now().Add(10 * time.Millisecond)
	var seq sync.Mutex
	next := 0
	for range workers {
		wg.Go(func() {
			for at := range due {
				seq.Lock()
				i := next
				next++
				seq.Unlock()
				url := t.bases[i%len(t.bases)] + fmt.Sprintf(path, 1+i%100)
				ok := get(url)
				l := time.Since(at)
				mu.Lock()
				if ok {
					lat = append(lat, l)
				} else {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	gap := time.Second / time.Duration(rate)
send:
	for i := range n {
		at := start.Add(time.Duration(i) * gap)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				break send
			case <-time.After(wait):
			}
		}
		due <- at
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(int(p*float64(len(lat))), len(lat)-1)]
	}
	r := result{rate: rate, achieved: float64(len(lat)) / elapsed.Seconds(), p50: pct(.5), p90: pct(.9), p99: pct(.99), errors: errs, ok: len(lat)}
	if t.pids != nil {
		r.proxyCPU = procCPU(t.pids) - cpu0
	}
	r.genCPU = float64(selfCPU()-self0) / float64(elapsed)
	return r
}

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
	cmd := exec.Command(bin)
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
	conf := fmt.Sprintf(`worker_processes auto;
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
`, work, servers.String(), port)
	path := filepath.Join(work, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	cmd := exec.Command(bin, "-c", path, "-p", work, "-g", "daemon off;")
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

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
