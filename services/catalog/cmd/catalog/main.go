// Command catalog serves products from Postgres (writes to the primary,
// reads from the streaming replica) behind memcached.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogdb"
	"github.com/scaleshop/scaleshop/services/catalog/internal/httpapi"
)

func main() { lifecycle.Main("catalog", run) }

type settings struct {
	capacity     httpserver.Capacity // back pressure: what the process does past its CPU quota
	addr         string
	primaryDSN   string
	replicaDSN   string
	primaryPool  pgdb.Pool
	replicaPool  pgdb.Pool
	readPath     catalogdb.ReadPathConfig
	writeTimeout time.Duration

	cacheEnabled  bool
	memcached     []string
	mcDNSInterval time.Duration
	mcTimeout     time.Duration
	mcMaxIdle     int
	cache         catalogcache.Config
	httpMaxAge    time.Duration
	migrateOnBoot bool
	migrateOnly   bool
	pprofAddr     string

	tel telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:        env.String("HTTP_ADDR", "127.0.0.1:8081"),
		primaryDSN:  env.Secret("CATALOG_PRIMARY_DSN", "postgres://scaleshop@127.0.0.1:5433/catalog?sslmode=disable"),
		replicaDSN:  env.Secret("CATALOG_REPLICA_DSN", "postgres://scaleshop@127.0.0.1:5434/catalog?sslmode=disable"),
		primaryPool: pgdb.ReadPool(env, "CATALOG_PRIMARY"),
		replicaPool: pgdb.ReadPool(env, "CATALOG_REPLICA"),
		readPath: catalogdb.ReadPathConfig{
			MaxLag:   env.Duration("CATALOG_REPLICA_MAX_LAG", 2*time.Second),
			Interval: env.Duration("CATALOG_REPLICA_PROBE_INTERVAL", 250*time.Millisecond),
			Timeout:  env.Duration("CATALOG_REPLICA_PROBE_TIMEOUT", 500*time.Millisecond),
		},
		writeTimeout: env.Duration("CATALOG_WRITE_TIMEOUT", 3*time.Second),

		cacheEnabled: env.Bool("CATALOG_CACHE_ENABLED", true),
		// host:port entries, or one srv+<SRV name> entry re-resolved every
		// CATALOG_MEMCACHED_DNS_INTERVAL (a headless Service on Kubernetes).
		memcached:     env.List("MEMCACHED_SERVERS", []string{"127.0.0.1:11211", "127.0.0.1:11212"}),
		mcDNSInterval: env.Duration("CATALOG_MEMCACHED_DNS_INTERVAL", 10*time.Second),
		mcTimeout:     env.Duration("CATALOG_MEMCACHED_TIMEOUT", 100*time.Millisecond),
		// gomemcache does not pipeline: every concurrent call holds a
		// connection, so keep as many idle as requests run at once.
		mcMaxIdle: env.Int("CATALOG_MEMCACHED_MAX_IDLE_CONNS", 64),
		cache: catalogcache.Config{
			ProductTTL: env.Duration("CATALOG_CACHE_PRODUCT_TTL", 5*time.Minute),
			// Pages hold whole bodies and reservations do not invalidate
			// them: this is how late a list may show a stock change.
			ListTTL:     env.Duration("CATALOG_CACHE_LIST_TTL", 10*time.Second),
			NegativeTTL: env.Duration("CATALOG_CACHE_NEGATIVE_TTL", 10*time.Second),
			LoadTimeout: env.Duration("CATALOG_CACHE_LOAD_TIMEOUT", 5*time.Second),
			// This process's copies of the current generation's pages: a
			// list hit then reads only the generation from memcached.
			LocalPageTTL:   env.Duration("CATALOG_CACHE_LOCAL_PAGE_TTL", time.Second),
			LocalPageBytes: env.Int("CATALOG_CACHE_LOCAL_PAGE_BYTES", 8<<20),
		},
		httpMaxAge:    env.Duration("CATALOG_HTTP_MAX_AGE", 5*time.Second),
		migrateOnBoot: env.Bool("CATALOG_MIGRATE", true),
		// Migrate and exit: a Kubernetes init container (infra/k8s).
		migrateOnly: env.Bool("CATALOG_MIGRATE_ONLY", false),
		pprofAddr:   httpserver.ReadProfilerAddr(env),
	}
	if s.readPath.Interval <= 0 || s.readPath.Timeout <= 0 {
		env.Fail("CATALOG_REPLICA_PROBE_INTERVAL and CATALOG_REPLICA_PROBE_TIMEOUT must be positive")
	}
	if s.cacheEnabled && len(s.memcached) == 0 {
		env.Fail("MEMCACHED_SERVERS is empty while CATALOG_CACHE_ENABLED=true")
	}
	if _, discovered := memcachedSRV(s.memcached); discovered && len(s.memcached) > 1 {
		env.Fail("MEMCACHED_SERVERS=%s: a %s entry names every node, so it must be the only one", strings.Join(s.memcached, ","), catalogcache.SRVPrefix)
	}
	if s.mcDNSInterval <= 0 {
		env.Fail("CATALOG_MEMCACHED_DNS_INTERVAL must be positive")
	}
	s.capacity = httpserver.ReadCapacity(env)
	s.tel = telemetry.ReadConfig(env, "catalog", telemetry.DefaultInstance("catalog", s.addr))
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

	primary, err := pgdb.Open(ctx, cfg.primaryDSN, cfg.primaryPool, "primary")
	if err != nil {
		return err
	}
	defer pgdb.Close(primary)
	if cfg.migrateOnly {
		return catalogdb.Migrate(ctx, primary, log)
	}
	replica, err := pgdb.Open(ctx, cfg.replicaDSN, cfg.replicaPool, "replica")
	if err != nil {
		return err
	}
	defer pgdb.Close(replica)
	for role, db := range map[string]*gorm.DB{"primary": primary, "replica": replica} {
		if err := pgdb.RegisterPoolMetrics(tel.Registry, db, role); err != nil {
			return err
		}
	}

	if cfg.migrateOnBoot {
		if err := catalogdb.Migrate(ctx, primary, log); err != nil {
			return err
		}
	}
	db, err := catalogdb.New(ctx, primary, replica, catalogdb.Config{
		ReadPath: cfg.readPath, WriteTimeout: cfg.writeTimeout}, tel.Registry)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	var store catalog.Store = db
	if cfg.cacheEnabled {
		sel, err := newSelector(gctx, g, cfg, log)
		if err != nil {
			return err
		}
		mc := memcache.NewFromSelector(sel)
		mc.Timeout = cfg.mcTimeout
		mc.MaxIdleConns = cfg.mcMaxIdle
		defer mc.Close()
		store = catalogcache.New(db, mc, sel.Owner, cfg.cache, tel.InstanceAttr(), tel.Registry, log)
	} else {
		log.Warn("memcached cache disabled (CATALOG_CACHE_ENABLED=false): every read goes to Postgres")
	}

	r := httpserver.NewEngine(tel, httpserver.WithCapacity(cfg.capacity))
	// Ready while either database answers: with the primary down the catalog
	// still serves reads, and memcached is never required.
	httpserver.MountHealth(r, tel.Registry, 2*time.Second,
		httpserver.Check{Name: "database", Check: db.Ready})
	httpapi.New(store, httpapi.Config{MaxAge: cfg.httpMaxAge}, log, tel.Registry).Mount(r)
	handler, err := httpapi.Compress(r)
	if err != nil {
		return err
	}

	g.Go(func() error { return db.Run(gctx) })
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, handler), 10*time.Second) })
	g.Go(func() error { return httpserver.ServeProfiler(gctx, cfg.pprofAddr, log) })
	log.Info("listening", "addr", cfg.addr, "cache", cfg.cacheEnabled)
	if err := g.Wait(); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// memcachedSRV returns the SRV name when servers is discovered by DNS.
func memcachedSRV(servers []string) (string, bool) {
	for _, s := range servers {
		if name, ok := strings.CutPrefix(s, catalogcache.SRVPrefix); ok {
			return name, true
		}
	}
	return "", false
}

// newSelector places keys on the configured memcached nodes: fixed
// host:port entries natively, or the targets of an SRV record that a
// goroutine in g re-resolves every mcDNSInterval.
func newSelector(ctx context.Context, g *errgroup.Group, cfg settings, log *slog.Logger) (*catalogcache.Rendezvous, error) {
	name, discovered := memcachedSRV(cfg.memcached)
	if !discovered {
		return catalogcache.NewRendezvous(cfg.memcached...)
	}
	sel := catalogcache.NewDiscovered()
	lookup := net.DefaultResolver.LookupSRV
	// Resolve once before serving so the first requests find the cache;
	// failing that the cache misses until the watch succeeds.
	if _, err := catalogcache.SyncSRV(ctx, sel, name, lookup); err != nil {
		log.Warn("memcached discovery", "err", err)
	}
	log.Info("memcached nodes", "srv", name, "servers", sel.Servers(), "every", cfg.mcDNSInterval)
	g.Go(func() error {
		catalogcache.WatchSRV(ctx, sel, name, cfg.mcDNSInterval, lookup,
			func(servers []string) { log.Info("memcached nodes changed", "servers", servers) },
			func(err error) { log.Warn("memcached discovery", "err", err) })
		return nil
	})
	return sel, nil
}
