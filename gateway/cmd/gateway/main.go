// Command gateway is the public entry point: it load-balances /api/products*
// over the catalog clones and /api/orders* over the orders clones, verifies
// tokens, limits rates, retries safely, and serves an admin API on a
// loopback-only port (and, when asked, its read-only part and the metrics
// on an observe port).
package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/docs"
	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/gateway/internal/ratelimit"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

func main() { lifecycle.Main("gateway", run) }

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

	g, gctx := errgroup.WithContext(ctx)
	catalog, err := newPool(gctx, g, "catalog", cfg.catalog, cfg, func(err error) { log.Warn("dns", "err", err) })
	if err != nil {
		return err
	}
	orders, err := newPool(gctx, g, "orders", cfg.orders, cfg, func(err error) { log.Warn("dns", "err", err) })
	if err != nil {
		return err
	}
	pools := []*balancer.Pool{catalog, orders}
	tel.Registry.MustRegister(balancer.NewCollector("gateway", pools...))

	transport := proxy.NewTransport()
	limiter := ratelimit.New(cfg.rateLimit, cfg.rateBurst)
	public := proxy.New(proxy.Config{
		Routes:          apiRoutes(catalog, orders),
		Transport:       transport,
		Verifier:        auth.NewVerifier([]byte(cfg.signingKey)),
		Limiter:         limiter,
		TryTimeout:      cfg.tryTimeout,
		RequestTimeout:  cfg.requestTimeout,
		MaxAttempts:     cfg.maxAttempts,
		RetryRatio:      cfg.retryRatio,
		RetryMin:        cfg.retryMin,
		MaxBody:         cfg.maxBody,
		DevTokens:       cfg.devMode,
		DevTokenTTL:     cfg.devTokenTTL,
		OpenAPI:         docs.OpenAPI(),
		Log:             log,
		AccessLogSample: cfg.accessLogSample,
		Registry:        tel.Registry,
	})
	metrics := promhttp.HandlerFor(tel.Registry, promhttp.HandlerOpts{})

	publicMux := publicRoutes(pools, public)
	adminMux := adminRoutes(pools, metrics)

	checker := &http.Client{Transport: transport}
	for _, p := range pools {
		g.Go(func() error { p.CheckHealth(gctx, checker); return nil })
	}
	g.Go(func() error { limiter.Sweep(gctx, time.Minute); return nil })
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, publicMux), 10*time.Second) })
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.adminAddr, adminMux), 2*time.Second) })
	if cfg.observeAddr != "" {
		observeMux := observeRoutes(pools, metrics)
		g.Go(func() error {
			return httpserver.Serve(gctx, httpserver.Server(cfg.observeAddr, observeMux), 2*time.Second)
		})
	}
	log.Info("listening", "addr", cfg.addr, "admin", cfg.adminAddr, "observe", cfg.observeAddr, "dev_mode", cfg.devMode)
	return g.Wait()
}

// newPool builds a pool from its configured members: plain URLs, and
// dns+http://name:port entries re-resolved every dnsInterval.
func newPool(ctx context.Context, g *errgroup.Group, name string, members []string, cfg settings, onDNSErr func(error)) (*balancer.Pool, error) {
	static, targets := balancer.SplitMembers(members)
	opts := cfg.poolOptions
	opts.Policy = cfg.policies[name]
	p, err := balancer.NewPool(name, static, opts)
	if err != nil {
		return nil, err
	}
	watch := p.Discover(ctx, targets, cfg.dnsInterval, net.DefaultResolver.LookupHost, onDNSErr)
	g.Go(func() error { watch(ctx); return nil })
	return p, nil
}

// spanName keeps span names low-cardinality: "GET /api/products", not
// one name per product id.
func spanName(r *http.Request) string {
	return r.Method + " " + proxy.Template(r.URL.Path)
}
