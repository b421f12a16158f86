// Command gateway is the public entry point: it load-balances /api/products*
// over the catalog clones and /api/orders* over the orders clones, and
// serves an admin API on a loopback-only port.
package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

func main() { lifecycle.Main("gateway", run) }

type settings struct {
	addr, adminAddr string
	catalogURLs     []string
	ordersURLs      []string
	healthInterval  time.Duration
	tel             telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:           env.String("GATEWAY_ADDR", "127.0.0.1:8080"),
		adminAddr:      env.String("GATEWAY_ADMIN_ADDR", "127.0.0.1:9080"),
		catalogURLs:    env.List("CATALOG_URLS", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}),
		ordersURLs:     env.List("ORDERS_URLS", []string{"http://127.0.0.1:8091", "http://127.0.0.1:8092"}),
		healthInterval: env.Duration("GATEWAY_HEALTH_INTERVAL", 2*time.Second),
	}
	s.tel = telemetry.ReadConfig(env, "gateway", telemetry.DefaultInstance("gateway", s.addr))
	return s, env.Effective(), env.Err()
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, effective, err := readSettings(getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, cfg.tel, stdout)
	if err != nil {
		return err
	}
	log := tel.Logger
	log.Info("starting", "config", effective)
	defer tel.Flush(ctx, 5*time.Second)

	catalog, err := balancer.NewPool("catalog", cfg.catalogURLs, balancer.Options{HealthInterval: cfg.healthInterval})
	if err != nil {
		return err
	}
	orders, err := balancer.NewPool("orders", cfg.ordersURLs, balancer.Options{HealthInterval: cfg.healthInterval})
	if err != nil {
		return err
	}
	pools := []*balancer.Pool{catalog, orders}

	transport := newTransport()
	public := proxy.New([]proxy.Route{
		{Prefix: "/api/products", Pool: catalog},
		{Prefix: "/api/orders", Pool: orders},
	}, otelhttp.NewTransport(transport), log)
	publicMux := http.NewServeMux()
	publicMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]string{"status": "ok"}) })
	publicMux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		for _, p := range pools {
			if _, err := p.Pick(); err != nil {
				writeJSONStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "pool": p.Name})
				return
			}
		}
		writeJSON(w, map[string]string{"status": "ready"})
	})
	publicMux.Handle("GET /metrics", promhttp.HandlerFor(tel.Registry, promhttp.HandlerOpts{}))
	publicMux.Handle("/", otelhttp.NewHandler(public, "gateway",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path })))

	adminMux := http.NewServeMux()
	adminMux.HandleFunc("GET /admin/backends", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]any{}
		for _, p := range pools {
			out[p.Name] = p.Status()
		}
		writeJSON(w, map[string]any{"pools": out})
	})

	checker := &http.Client{Transport: transport, Timeout: 2 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range pools {
		g.Go(func() error { p.CheckHealth(gctx, checker); return nil })
	}
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, publicMux), 10*time.Second) })
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.adminAddr, adminMux), 2*time.Second) })
	log.Info("listening", "addr", cfg.addr, "admin", cfg.adminAddr)
	return g.Wait()
}

// newTransport is shared by every pool. Go's default keeps 2 idle
// connections per host, which opens and closes sockets under load.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func writeJSON(w http.ResponseWriter, v any) { writeJSONStatus(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
