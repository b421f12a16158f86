package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// up installs, initialises and starts the stack, then supervises it until
// ctx ends (Ctrl-C), and stops everything in reverse dependency order.
func (e *environment) up(ctx context.Context, detachedChild bool) error {
	if pid := readPid(e.path("run", "stackctl.pid")); pid > 0 && pid != os.Getpid() && alive(pid) {
		e.say("the %s stack is already running (supervisor pid %d); `make down` stops it", e.profile, pid)
		return e.printTable()
	}
	for _, d := range []string{e.path("logs"), e.path("run"), e.path("bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if n, err := e.killLeftovers(); err != nil {
		return err
	} else if n > 0 {
		e.say("stopped %d processes left behind by an earlier run", n)
	}
	if err := e.checkPortsFree(); err != nil {
		return err
	}
	if err := e.checkCPUSettings(); err != nil {
		return err
	}
	e.removeCgroups() // what a supervisor that died left behind
	e.cpu = e.prepareCPU()
	e.sayCPU()
	// Jaeger's first build takes longer than everything else together: it
	// runs in the background, and the stack starts without waiting for it.
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	a, err := e.artifacts(ctx, e.startJaegerBuild(bg))
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.path("run", "stackctl.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(e.path("run", "stackctl.pid"))

	e.writeManifest("starting")
	sup := &supervisor{env: e, procs: map[string]*process{}, echo: !detachedChild}
	if err := sup.writeScrapeTargets(); err != nil {
		return err
	}
	start := time.Now()
	waitLate, err := sup.startAll(ctx, bg, a)
	if err != nil {
		stopBackground()
		waitLate()
		sup.stopAll()
		e.removeCgroups()
		e.writeManifest("stopped")
		return err
	}
	if pending := sup.publishStatus(); len(pending) == 0 {
		e.say("all %d components ready in %s", len(e.stack.Components), time.Since(start).Round(100*time.Millisecond))
	} else {
		e.say("all components but %s ready in %s; Jaeger starts as soon as its build ends (progress: %s)",
			strings.Join(pending, ", "), time.Since(start).Round(100*time.Millisecond), e.jaegerBuildStatusPath())
	}
	if err := e.printTable(); err != nil {
		return err
	}
	if !detachedChild {
		e.say("Ctrl-C stops everything")
	}
	go func() {
		if err := sup.serveControl(ctx, a); err != nil {
			e.say("%v", err)
		}
	}()
	sup.watch(ctx)
	e.say("stopping")
	stopBackground()
	waitLate() // a Jaeger starting right now is in procs before stopAll runs
	sup.stopAll()
	e.removeCgroups()
	e.writeManifest("stopped")
	e.say("stopped")
	return nil
}

// artifacts installs and builds what the components run from. The
// services' build runs alongside the Debian packages and the Kafka jars,
// which need no Go; jaeger is the background build of Jaeger.
func (e *environment) artifacts(ctx context.Context, jaeger *jaegerBuild) (artifacts, error) {
	bin := e.path("bin")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.buildServices(gctx, bin) })
	var libs string
	var pu pgUser
	g.Go(func() error {
		if err := e.installDebianPackages(gctx); err != nil {
			return err
		}
		var err error
		if pu, err = lookupPostgresUser(); err != nil {
			return err
		}
		if err := pgOwnedDir(pu, e.pgSocketDir(), 0o755); err != nil {
			return err
		}
		libs, err = e.kafkaLibs(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return artifacts{}, err
	}
	return artifacts{pg: pu, kafkaLibs: libs, jaeger: jaeger, binDir: bin}, nil
}

// buildServices compiles the named Go binaries (all of the topology's when
// none are named) into dir.
func (e *environment) buildServices(ctx context.Context, dir string, only ...string) error {
	seen := map[string]bool{}
	args := []string{"build", "-o", dir + "/"}
	for _, c := range e.stack.Components {
		if c.Kind == topology.Service && !seen[c.Binary] && (len(only) == 0 || slices.Contains(only, c.Binary)) {
			seen[c.Binary] = true
			args = append(args, topology.Package(c.Binary))
		}
	}
	e.say("building %s (go build)", strings.Join(args[3:], " "))
	return e.runLogged(ctx, e.logPath("build"), "go build services", nil, "go", args...)
}

// checkPortsFree fails, before anything starts, with each taken port, its
// owner in the topology and the process that holds it (from /proc), and in
// one line whose stack that is when it is a scaleshop stack, this
// checkout's or another's.
func (e *environment) checkPortsFree() error {
	var taken, owners []string
	hint := ""
	ownSupervisor := readPid(e.path("run", "stackctl.pid"))
	for _, c := range e.stack.Components {
		for _, p := range c.Ports {
			port := e.stack.Port(c.Name, p.Name)
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				ln.Close()
				continue
			}
			by := "a process this user cannot see"
			if h, ok := portHolder(port); ok {
				by = fmt.Sprintf("pid %d: %s", h.pid, h.cmdline)
				if o := h.owner(ownSupervisor); o != "" && !slices.Contains(owners, o) {
					owners = append(owners, o)
				}
			}
			taken = append(taken, fmt.Sprintf("  port %d (%s %s) is held by %s", port, c.Name, p.Name, by))
			if hint == "" {
				hint = "or set " + p.Env + " (and the other ports' variables) to free ports"
				if e.profile == "test" {
					hint = "or set SCALESHOP_TEST_PORT_OFFSET to move the whole test stack"
				}
			}
		}
	}
	if len(taken) == 0 {
		return nil
	}
	if len(owners) == 0 {
		owners = []string{"stop what holds them, " + strings.TrimPrefix(hint, "or ")}
	} else {
		owners = append(owners, hint)
	}
	return fmt.Errorf("ports in use:\n%s\n%s", strings.Join(taken, "\n"), strings.Join(owners, "\n"))
}

// supervisor owns the running processes.
type supervisor struct {
	env   *environment
	echo  bool
	mu    sync.Mutex
	procs map[string]*process
	// scrapeExtras are the clones scale-out started, for Prometheus's targets.
	scrapeExtras map[string]extraTarget
	watched      map[*process]bool
	status       lateState
}

// startAll starts the stack (see startInOrder); Jaeger, while its binary
// is still being built, starts later under bg, and lateStarted reports it.
func (s *supervisor) startAll(ctx, bg context.Context, a artifacts) (waitLate func(), err error) {
	stillBuilding := func(name string) bool { return name == topology.JaegerAllInOne && !a.jaeger.built() }
	deferred, waitLate, err := startInOrder(ctx, bg, s.env.stack.Components,
		func(ctx context.Context, c topology.Component) error { return s.launch(ctx, c, a, startOptions{}) },
		stillBuilding, s.lateStarted)
	if err != nil && ctx.Err() != nil {
		return waitLate, errors.New("interrupted while starting")
	}
	s.status.Lock()
	s.status.deferred, s.status.serving = deferred, err == nil
	s.status.Unlock()
	return waitLate, err
}

// lateState is what stack.json's status is made of once the stack serves:
// the components started in the background and how each one ended. The
// supervisor's start and the background starts both publish it, in either
// order; the last one to publish writes the whole truth.
type lateState struct {
	sync.Mutex
	serving  bool
	deferred []string
	ended    map[string]error
}

// publishStatus writes stack.json from the late state and returns the
// components not up yet.
func (s *supervisor) publishStatus() (pending []string) {
	s.status.Lock()
	defer s.status.Unlock()
	failed := false
	for _, name := range s.status.deferred {
		err, ended := s.status.ended[name]
		if !ended || err != nil {
			pending = append(pending, name)
		}
		failed = failed || err != nil
	}
	switch {
	case !s.status.serving: // still starting; startAll's caller publishes
	case failed:
		s.env.writeManifest("degraded", pending...)
	case len(pending) > 0:
		s.env.writeManifest("serving", pending...)
	default:
		s.env.writeManifest("ready")
	}
	return pending
}

// lateStarted is told when a component that started in the background is
// up (err nil) or could not start.
func (s *supervisor) lateStarted(name string, err error) {
	e := s.env
	if errors.Is(err, context.Canceled) {
		return // the stack is stopping
	}
	s.status.Lock()
	if s.status.ended == nil {
		s.status.ended = map[string]error{}
	}
	s.status.ended[name] = err
	s.status.Unlock()
	if err != nil {
		s.publishStatus()
		e.say("%s did not start: %v; the rest of the stack keeps running", name, err)
		return
	}
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	s.watchOne(context.Background(), p)
	if len(s.publishStatus()) == 0 {
		e.say("%s ready: the whole stack runs now; traces at %s", name, e.endpoints().JaegerQueryURL)
	}
}

// startOptions change one start of a service: env (K=V) goes on top of
// its environment, and cpus, when set, replaces its clone's CPU quota.
type startOptions struct {
	env  []string
	cpus *float64
}

// describe is what a progress line says about o: " with K=V, 1.00 cores".
func (o startOptions) describe(cores float64, cgroup string) string {
	var parts []string
	if len(o.env) > 0 {
		parts = append(parts, strings.Join(o.env, " "))
	}
	if cgroup != "" {
		parts = append(parts, "CPU quota "+cpuquota.FormatCores(cores)+" cores")
	}
	if len(parts) == 0 {
		return ""
	}
	return " with " + strings.Join(parts, ", ")
}

// cpusFor is the quota c starts with under o: the override, else its
// binary's configured quota; 0 (unbounded) for what is not a clone.
func (e *environment) cpusFor(c topology.Component, o startOptions) (float64, error) {
	if c.Kind != topology.Service || topology.CPUsEnv(c.Binary) == "" {
		return 0, nil
	}
	if o.cpus != nil {
		return *o.cpus, nil
	}
	return e.defaultCPUs(c.Binary)
}

// launch starts c with o and waits until it is ready.
func (s *supervisor) launch(ctx context.Context, c topology.Component, a artifacts, o startOptions) error {
	e := s.env
	l := e.launcherFor(c, a)
	if l.prepare != nil {
		if err := l.prepare(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	spec, err := l.spec()
	if err != nil {
		return err
	}
	cores, err := e.cpusFor(c, o)
	if err != nil {
		return err
	}
	if spec.cgroup, err = e.cloneCgroup(c.Name, cores); err != nil {
		return err
	}
	e.say("starting %s%s", c.Name, o.describe(cores, spec.cgroup))
	spec.env = append(spec.env, o.env...) // exec keeps the last value of a key
	p, err := e.start(c.Name, spec, s.echo)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.procs[c.Name] = p
	s.mu.Unlock()
	if err := e.waitReady(ctx, p, l.readyTimeout, l.ready); err != nil {
		return err
	}
	if l.afterReady != nil {
		if err := l.afterReady(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	e.say("%s ready", c.Name)
	return nil
}

// watch reports components that exit on their own (a crash, or a kill -9
// from outside) and returns when ctx ends.
func (s *supervisor) watch(ctx context.Context) {
	s.mu.Lock()
	procs := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	for _, p := range procs {
		s.watchOne(ctx, p)
	}
	<-ctx.Done()
}

func (s *supervisor) watchOne(ctx context.Context, p *process) {
	s.mu.Lock()
	seen := s.watched[p]
	if s.watched == nil {
		s.watched = map[*process]bool{}
	}
	s.watched[p] = true
	s.mu.Unlock()
	if seen { // a late start may be watched by watch and by lateStarted
		return
	}
	go func() {
		select {
		case <-p.exited:
			if !p.wasStopped() {
				s.env.say("%s exited (%v); the rest of the stack keeps running; `stackctl start %s` restarts it; log: %s",
					p.name, p.err, p.name, s.env.logPath(p.name))
			}
		case <-ctx.Done():
		}
	}()
}

// stopAll stops components in reverse dependency order, so services flush
// their spans to Jaeger and close their pools before those go away.
func (s *supervisor) stopAll() {
	s.stopExtras()
	comps := s.env.stack.Components
	for i := len(comps) - 1; i >= 0; i-- {
		s.mu.Lock()
		p := s.procs[comps[i].Name]
		s.mu.Unlock()
		if p == nil {
			continue
		}
		if err := p.stop(30 * time.Second); err != nil {
			s.env.say("%v", err)
		}
	}
}

// writeManifest publishes stack.json; pending names the components that
// are not up yet although the stack serves ("serving", "degraded").
func (e *environment) writeManifest(status string, pending ...string) {
	m := &topology.Manifest{
		Profile:     e.profile,
		StateDir:    e.stateDir,
		Status:      status,
		Pending:     pending,
		JaegerBuild: e.jaegerBuildStatusPath(),
		Supervisor:  os.Getpid(),
		Endpoints:   e.endpoints(),
		CPUQuota:    topology.ManifestCPUQuota{Enforced: e.cpu.enforced()},
	}
	if e.cpu.enforced() {
		m.CPUQuota.Cgroup = e.cpu.stack.Dir
	} else if e.cpu != nil {
		m.CPUQuota.Reason = e.cpu.reason
	}
	for _, c := range e.stack.Components {
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = e.stack.Port(c.Name, p.Name)
		}
		cpus := 0.0
		if e.cpu.enforced() {
			cpus, _ = e.cpusFor(c, startOptions{})
		}
		m.Components = append(m.Components, topology.ManifestComponent{
			Name: c.Name, Kind: c.Kind, Ports: ports, Log: e.logPath(c.Name), CPUs: cpus,
		})
	}
	if err := topology.WriteManifest(e.manifestPath(), m); err != nil {
		e.say("cannot write %s: %v", e.manifestPath(), err)
	}
}

// printTable shows what runs where.
func (e *environment) printTable() error {
	ep := e.endpoints()
	e.outMu.Lock()
	defer e.outMu.Unlock()
	w := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nscaleshop (%s profile) — state %s, logs %s\n\n", e.profile, e.stateDir, e.path("logs"))
	fmt.Fprintln(w, "COMPONENT\tADDRESS\tCPUS\tNOTES")
	for _, c := range e.stack.Components {
		addr, note := "", ""
		switch c.Kind {
		case topology.Postgres:
			addr = "127.0.0.1:" + strconv.Itoa(e.stack.Port(c.Name, "pg"))
			note = "data " + e.pgDataDir(c.Name)
		case topology.Memcached:
			addr = e.stack.Addr(c.Name, "memcache")
		case topology.Kafka:
			addr = e.stack.Addr(c.Name, "broker")
			note = "topics " + strings.Join(topology.Topics(), ", ") + "; data " + e.path("kafka", "data")
		case topology.Jaeger:
			addr = "http://" + e.stack.Addr(c.Name, "query")
			note = fmt.Sprintf("query API (/api/traces/{id}); OTLP gRPC %d, HTTP %d",
				e.stack.Port(c.Name, "otlp-grpc"), e.stack.Port(c.Name, "otlp-http"))
			if b, ok := readJaegerBuildStatus(e.jaegerBuildStatusPath()); ok && b.State != "done" {
				note = fmt.Sprintf("still building (%s, %d %%): starts by itself when built; spans until then are dropped and counted (otel_spans_export_failed_total)", b.State, b.Percent)
			}
		case topology.Prometheus:
			addr = ep.PrometheusURL
			note = "metrics and recording rules; its UI at /, targets at /classic/targets"
		default:
			addr = "http://" + e.stack.Addr(c.Name, "http")
			switch c.Name {
			case topology.Gateway:
				note = "public API; admin " + ep.GatewayAdminURL + "/admin/backends"
			case topology.Console:
				note = "open this in a browser: overview, concepts, break it, shop, traces"
			default:
				note = "/healthz /readyz /metrics"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, addr, quotaOf(readPid(e.path("run", c.Name+".pid"))), note)
	}
	extras := e.extraPids()
	for _, name := range slices.Sorted(maps.Keys(extras)) {
		fmt.Fprintf(w, "%s\t\t%s\tadded by scale-out\n", name, quotaOf(extras[name]))
	}
	fmt.Fprintln(w, "\nCPUS is the CPU quota the kernel enforces on each process, in cores, read back from its cgroup.")
	fmt.Fprintf(w, "\nopen: %s\n", ep.ConsoleURL)
	fmt.Fprintf(w, "try:  curl -i %s/api/products\n", ep.GatewayURL)
	fmt.Fprintf(w, "      curl -s %s/api/services\n\n", ep.JaegerQueryURL)
	return w.Flush()
}

// upDetached starts a supervisor in the background and returns once the
// stack is ready (make test uses this), or fails with the supervisor's log.
func (e *environment) upDetached(ctx context.Context) error {
	if pid := readPid(e.path("run", "stackctl.pid")); pid > 0 && alive(pid) {
		e.say("the %s stack is already running (supervisor pid %d); `make down` stops it", e.profile, pid)
		return nil
	}
	if err := e.checkPortsFree(); err != nil {
		return err
	}
	if err := os.MkdirAll(e.path("logs"), 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := e.logPath("stackctl")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	_ = os.Remove(e.manifestPath())
	cmd := exec.Command(self, "up", "--profile", e.profile, "--supervise")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = e.repo
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // survives this terminal
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e.say("supervisor started in the background (pid %d, log %s)", cmd.Process.Pid, logPath)
	printed := 0
	for {
		printed = e.echoNewLines(logPath, printed)
		if m, err := topology.ReadManifest(e.manifestPath()); err == nil {
			switch {
			case m.Status == "ready":
				return nil
			// The tests read traces: a test stack is up once Jaeger is too.
			// A developer's stack serves while Jaeger is still building.
			case m.Status == "serving" && e.profile != "test":
				e.echoNewLines(logPath, printed)
				e.say("the stack serves; Jaeger starts when its build ends (%s)", m.JaegerBuild)
				return nil
			case m.Status == "degraded":
				e.echoNewLines(logPath, printed)
				if e.profile == "test" {
					_ = cmd.Process.Signal(syscall.SIGTERM)
					return fmt.Errorf("the %s stack started without %s; see %s", e.profile, strings.Join(m.Pending, ", "), logPath)
				}
				e.say("the stack serves without %s; see %s", strings.Join(m.Pending, ", "), logPath)
				return nil
			}
		}
		select {
		case err := <-exited:
			e.echoNewLines(logPath, printed)
			return fmt.Errorf("the %s stack failed to start (%v); see %s", e.profile, err, logPath)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (e *environment) echoNewLines(path string, from int) int {
	b, err := os.ReadFile(path)
	if err != nil || len(b) <= from {
		return from
	}
	chunk := b[from:]
	end := strings.LastIndexByte(string(chunk), '\n')
	if end < 0 {
		return from
	}
	e.outMu.Lock()
	_, _ = e.out.Write(chunk[:end+1])
	e.outMu.Unlock()
	return from + end + 1
}

// down stops a stack of this profile: its supervisor if one runs, then any
// process a dead supervisor left behind.
func (e *environment) down() error {
	stopped := false
	pid := readPid(e.path("run", "stackctl.pid"))
	if pid > 0 && alive(pid) {
		stopped = true
		e.say("stopping the %s stack (supervisor pid %d)", e.profile, pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(pid, 90*time.Second)
	}
	n, err := e.killLeftovers()
	if err != nil {
		return err
	}
	if n > 0 {
		stopped = true
		e.say("stopped %d leftover processes", n)
	}
	// Postgres may outlive a pid file that was never written (a crash during
	// start): its own postmaster.pid is authoritative.
	for _, c := range e.stack.Components {
		if c.Kind != topology.Postgres {
			continue
		}
		if pm := readPid(filepath.Join(e.pgDataDir(c.Name), "postmaster.pid")); pm > 0 && alive(pm) {
			stopped = true
			_ = syscall.Kill(pm, syscall.SIGINT)
			waitGone(pm, 30*time.Second)
		}
	}
	e.removeCgroups()
	if !stopped {
		e.say("nothing was running here (no %s stack of %s)", e.profile, e.stateDir)
		if err := e.checkPortsFree(); err != nil {
			e.say("yet `make up` would fail: %v", err)
		}
		return nil
	}
	e.say("the %s stack is down", e.profile)
	return nil
}

// clean stops the stack and removes its state; caches (Kafka jars, the
// Jaeger binary) stay.
func (e *environment) clean() error {
	if err := e.down(); err != nil {
		return err
	}
	if err := os.RemoveAll(e.stateDir); err != nil {
		return err
	}
	e.say("removed %s (caches in %s kept)", e.stateDir, e.cacheDir)
	return nil
}

func (e *environment) status() error {
	m, err := topology.ReadManifest(e.manifestPath())
	if err != nil {
		e.say("no %s stack has run here (%v)", e.profile, err)
		return nil
	}
	pid := readPid(e.path("run", "stackctl.pid"))
	running := pid > 0 && alive(pid)
	rss := rssByGroup()
	var total int64
	var names, stopped []string
	line := func(name string, p int) {
		state := "stopped"
		if p > 0 && alive(p) {
			state = fmt.Sprintf("running pid %-8d RSS %6.1f MiB  CPU quota %s", p, float64(rss[p])/(1<<20), quotaOf(p))
			total += rss[p]
		} else {
			stopped = append(stopped, name)
		}
		names = append(names, fmt.Sprintf("  %-20s %s", name, state))
	}
	known := map[string]bool{"stackctl": true}
	for _, c := range m.Components {
		known[c.Name] = true
		line(c.Name, readPid(e.path("run", c.Name+".pid")))
	}
	// Clones that scale-out started are in no manifest; their pid files
	// say they run.
	for _, name := range e.extraRunning(known) {
		line(name, readPid(e.path("run", name+".pid")))
	}
	if !m.CPUQuota.Enforced && m.CPUQuota.Reason != "" {
		names = append(names, "  CPU quotas are NOT enforced: "+m.CPUQuota.Reason)
	}
	sort.Strings(names)
	sort.Strings(stopped)
	names = append(names, fmt.Sprintf("  %-20s %38.1f MiB", "total RSS", float64(total)/(1<<20)))
	e.say("%s stack: %s", e.profile, stackState(m.Status, running, stopped))
	e.outMu.Lock()
	fmt.Fprintln(e.out, strings.Join(names, "\n"))
	e.outMu.Unlock()
	if running {
		return e.printTable()
	}
	return nil
}

// stackState is the one-line verdict of status: never "ready" while the
// supervisor is gone or a component is stopped.
func stackState(manifest string, supervisorRunning bool, stopped []string) string {
	switch {
	case !supervisorRunning:
		return "not running (no supervisor; `make up` starts it)"
	case len(stopped) > 0:
		return fmt.Sprintf("%s, but %d stopped: %s", manifest, len(stopped), strings.Join(stopped, ", "))
	}
	return manifest
}

// extraRunning names the components with a pid file that known does not
// list: the clones scale-out started.
func (e *environment) extraRunning(known map[string]bool) []string {
	entries, err := os.ReadDir(e.path("run"))
	if err != nil {
		return nil
	}
	var out []string
	for _, ent := range entries {
		if name, ok := strings.CutSuffix(ent.Name(), ".pid"); ok && !known[name] {
			out = append(out, name)
		}
	}
	return out
}
