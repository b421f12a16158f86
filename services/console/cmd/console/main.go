// Command console is the stack's web console: the topology drawn live,
// one panel per system-design concept with its numbers from Prometheus,
// buttons that break things on purpose through the supervisor, a small
// shop on the public API, and traces from Jaeger's query API.
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/console/internal/overview"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
	"github.com/scaleshop/scaleshop/services/console/internal/web"
)

func main() { lifecycle.Main("console", run) }

type settings struct {
	addr          string
	gatewayURL    *url.URL
	gatewayAdmin  string
	prometheusURL string
	jaegerURL     string
	jaegerUIURL   string
	manifest      string
	fromTargets   bool
	stateDir      string
	devMode       bool
	instance      string
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:          env.String("HTTP_ADDR", "127.0.0.1:3000"),
		gatewayAdmin:  env.String("GATEWAY_ADMIN_URL", "http://127.0.0.1:9080"),
		prometheusURL: env.String("PROMETHEUS_URL", "http://127.0.0.1:9090"),
		jaegerURL:     env.String("JAEGER_QUERY_URL", "http://127.0.0.1:16686"),
		jaegerUIURL:   env.String("JAEGER_UI_URL", ""),
		manifest:      env.String("STACK_MANIFEST", ".state/dev/stack.json"),
		stateDir:      env.String("STACK_STATE_DIR", ""),
		devMode:       env.String("SCALESHOP_MODE", "dev") == "dev",
		instance:      env.String("SERVICE_INSTANCE_ID", "console"),
	}
	// Where the overview's list of components comes from: the stack
	// manifest (a native or test stack), or the targets Prometheus
	// scrapes (a Kubernetes cluster, where no manifest exists and the
	// console reaches no pod but the gateway's, Prometheus and Jaeger).
	switch from := env.String("OVERVIEW_SOURCE", "manifest"); from {
	case "manifest":
	case "prometheus":
		s.fromTargets = true
	default:
		env.Fail("OVERVIEW_SOURCE=%q: want manifest or prometheus", from)
	}
	raw := env.String("GATEWAY_URL", "http://127.0.0.1:8080")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		env.Fail("GATEWAY_URL=%q is not an http://host:port URL", raw)
	}
	s.gatewayURL = u
	return s, env.Effective(), env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, effective, err := readSettings(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "console", "instance", cfg.instance)
	log.Info("starting", "config", effective)

	client := &http.Client{Timeout: 5 * time.Second}
	prom, err := sources.NewPrometheus(cfg.prometheusURL)
	if err != nil {
		return err
	}
	jaegerBuild := func() *sources.JaegerBuild { return nil }
	if cfg.stateDir != "" {
		jaegerBuild = func() *sources.JaegerBuild {
			jb, err := sources.ReadJaegerBuild(cfg.stateDir)
			if err != nil {
				log.Warn("jaeger build progress", "err", err)
			}
			return jb
		}
	}
	builder := &overview.Builder{
		Manifest:    func() (*topology.Manifest, error) { return topology.ReadManifest(cfg.manifest) },
		Probe:       &sources.Prober{HTTP: client},
		Gateway:     &sources.Gateway{AdminURL: cfg.gatewayAdmin, HTTP: client},
		Metrics:     prom,
		JaegerBuild: jaegerBuild,
	}
	if cfg.fromTargets {
		builder.Manifest, builder.Targets = nil, prom
	}
	wcfg := web.Config{
		Overview:     builder,
		Metrics:      prom,
		Traces:       &sources.Jaeger{QueryURL: cfg.jaegerURL, HTTP: client},
		GatewayURL:   cfg.gatewayURL,
		JaegerUIURL:  cfg.jaegerUIURL,
		JaegerNotice: func() string { return jaegerBuild().Notice(time.Now()) },
		Log:          log,
	}
	// Break it needs both: dev mode, and a supervisor to send actions to
	// (the native stack's; compose has none).
	if cfg.stateDir != "" {
		sup := &sources.Supervisor{StateDir: cfg.stateDir}
		builder.Running = sup
		if cfg.devMode {
			wcfg.Control = sup
		}
	}
	console, err := web.New(wcfg)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	telemetry.RegisterCPUQuota(reg, log) // every process says how big a machine it runs on
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", console.Handler())

	log.Info("listening", "addr", cfg.addr, "break_it", wcfg.Control != nil)
	return httpserver.Serve(ctx, httpserver.Server(cfg.addr, mux), 5*time.Second)
}
