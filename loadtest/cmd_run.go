package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/loadtest/internal/report"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

// ErrThresholds is returned when a run finished but crossed a threshold.
var ErrThresholds = errors.New("thresholds crossed")

// common are the flags every command that sends load shares.
type common struct {
	stack     string
	target    string
	out       string
	traces    int
	quiet     bool
	rateScale float64
	durScale  float64
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.stack, "stack", "", "stack.json of the running stack (default $SCALESHOP_STACK, else $SCALESHOP_STATE_DIR/dev/stack.json, else .state/dev/stack.json)")
	fs.StringVar(&c.target, "target", "", "base URL to load instead of the scenario's target")
	fs.StringVar(&c.out, "out", "loadtest/reports", "directory for the JSON and HTML reports")
	fs.IntVar(&c.traces, "traces", 3, "fetch the waterfall of this many of the slowest requests from Jaeger")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line")
	fs.Float64Var(&c.rateScale, "rate-scale", 1, "multiply every rate of the scenario")
	fs.Float64Var(&c.durScale, "duration-scale", 1, "multiply every duration of the scenario (a quick look at a long one)")
}

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c common
	c.register(fs)
	seed := fs.Uint64("seed", 0, "random seed for the request mix (0: random)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Flags may follow the scenario name too.
	var positional []string
	for fs.NArg() > 0 {
		positional = append(positional, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(positional) != 1 {
		return fmt.Errorf("usage: loadtest run SCENARIO [flags]; scenarios: %s", strings.Join(scenarioNames(), ", "))
	}
	sc, err := scenario.Load(scenarioPath(positional[0]))
	if err != nil {
		return err
	}
	rep, err := runScenario(ctx, sc, c, *seed, getenv, stdout)
	if err != nil {
		return err
	}
	if !rep.Passed {
		return fmt.Errorf("%s: %w", sc.Name, ErrThresholds)
	}
	return nil
}

// runScenario runs one scenario and writes its reports.
func runScenario(ctx context.Context, sc *scenario.Scenario, c common, seed uint64, getenv func(string) string, stdout io.Writer) (*report.Report, error) {
	if c.rateScale != 1 || c.durScale != 1 {
		sc.Scale(c.rateScale, c.durScale)
	}
	base, jaeger, err := resolveTarget(sc.Target, c, getenv)
	if err != nil {
		return nil, err
	}
	sched, err := sc.Schedule()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "scenario %s → %s: %d requests over %s\n", sc.Name, base, sched.Total(), sched.Duration())
	opt := scenario.Options{BaseURL: base, Log: stdout, Seed: seed}
	if !c.quiet {
		opt.Progress = stdout
	}
	out, err := sc.Run(ctx, opt)
	if err != nil {
		return nil, err
	}
	rep := &report.Report{
		Schema: report.Schema, Scenario: sc.Name, Description: strings.TrimSpace(sc.Description),
		Target: base, Machine: report.ThisMachine(), Passed: out.Passed(), Failures: out.Failures, Result: out.Result,
		Sampling: telemetry.ReadSampling(ctx, metricsBase(base, c, getenv)),
	}
	if rep.Failures == nil {
		rep.Failures = []string{}
	}
	rep.FetchTraces(ctx, jaeger, c.traces)
	rep.LinkTraces(consoleURL(c, getenv))
	rep.Text(stdout)
	if c.out != "" {
		name := fmt.Sprintf("%s-%s", sc.Name, time.Now().Format("20060102-150405"))
		j, h, err := rep.WriteFiles(c.out, name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "reports: %s  %s\n", j, h)
	}
	return rep, nil
}

// resolveTarget finds the base URL to load and Jaeger's query URL.
func resolveTarget(target string, c common, getenv func(string) string) (base, jaeger string, err error) {
	jaeger = getenv("JAEGER_QUERY_URL")
	m, merr := loadManifest(c.stack, getenv)
	if m != nil && jaeger == "" {
		jaeger = m.Endpoints.JaegerQueryURL
	}
	switch {
	case c.target != "":
		return c.target, jaeger, nil
	case strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://"):
		return target, jaeger, nil
	case merr != nil:
		return "", "", fmt.Errorf("no running stack to find the %s in (start one with `make up`, or pass --target URL): %w", orDefault(target, "gateway"), merr)
	case target == "" || target == "gateway":
		return m.Endpoints.GatewayURL, jaeger, nil
	case target == "catalog" && len(m.Endpoints.CatalogURLs) > 0:
		return m.Endpoints.CatalogURLs[0], jaeger, nil
	}
	return "", "", fmt.Errorf("target %q: use gateway, catalog or a URL", target)
}

// metricsBase is where base's own /metrics is: the gateway serves its
// metrics on the admin port only, every service on its own port.
func metricsBase(base string, c common, getenv func(string) string) string {
	if m, err := loadManifest(c.stack, getenv); err == nil && base == m.Endpoints.GatewayURL {
		return m.Endpoints.GatewayAdminURL
	}
	return base
}

// loadManifest reads the running stack's stack.json.
// consoleURL is where the report's trace links open: CONSOLE_URL, else the
// running stack's console.
func consoleURL(c common, getenv func(string) string) string {
	if u := getenv("CONSOLE_URL"); u != "" {
		return u
	}
	if m, err := loadManifest(c.stack, getenv); err == nil {
		return m.Endpoints.ConsoleURL
	}
	return ""
}

func loadManifest(path string, getenv func(string) string) (*topology.Manifest, error) {
	if path == "" {
		path = manifestPath(getenv)
	}
	m, err := topology.ReadManifest(path)
	if err != nil {
		return nil, err
	}
	if m.Status != "ready" {
		return nil, fmt.Errorf("the stack in %s is %q, not ready", path, m.Status)
	}
	return m, nil
}

func manifestPath(getenv func(string) string) string {
	if p := getenv("SCALESHOP_STACK"); p != "" {
		return p
	}
	dir := getenv("SCALESHOP_STATE_DIR")
	if dir == "" {
		dir = filepath.Join(moduleRoot(), ".state")
	}
	return filepath.Join(dir, "dev", "stack.json")
}

// moduleRoot is the nearest directory upwards holding go.mod, or ".".
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return "."
		}
	}
}

func scenariosDir() string { return filepath.Join(moduleRoot(), "loadtest", "scenarios") }

// scenarioPath turns a bare name into the file under loadtest/scenarios.
func scenarioPath(arg string) string {
	if strings.ContainsRune(arg, os.PathSeparator) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return arg
	}
	return filepath.Join(scenariosDir(), arg+".yaml")
}

func scenarioNames() []string {
	files, _ := filepath.Glob(filepath.Join(scenariosDir(), "*.yaml"))
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	sort.Strings(out)
	return out
}

func cmdValidate(args []string, stdout io.Writer) error {
	files := args
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(scenariosDir(), "*.yaml"))
	}
	var errs []error
	for _, f := range files {
		sc, err := scenario.Load(scenarioPath(f))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sched, err := sc.Schedule()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		fmt.Fprintf(stdout, "ok  %-10s %6d requests over %s\n", sc.Name, sched.Total(), sched.Duration())
	}
	return errors.Join(errs...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
