// Command orders is the orders API: it accepts orders at once (202) on the
// customer's logical shard and relays them to Kafka through an outbox.
package main

import (
	"context"
	"database/sql"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/orders/internal/catalogclient"
	"github.com/scaleshop/scaleshop/services/orders/internal/httpapi"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
	"github.com/scaleshop/scaleshop/services/orders/internal/relay"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

func main() { lifecycle.Main("orders", run) }

type settings struct {
	capacity       httpserver.Capacity // back pressure: what the process does past its CPU quota
	addr           string
	pprofAddr      string
	shardDSNs      []string
	pool           pgdb.Pool
	brokers        []string
	catalogURLs    []string
	catalogTimeout time.Duration
	maxBacklog     int
	migrateOnly    bool
	relay          relay.Config
	tel            telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:           env.String("HTTP_ADDR", "127.0.0.1:8091"),
		pprofAddr:      httpserver.ReadProfilerAddr(env),
		shardDSNs:      shardmap.ReadDSNs(env),
		pool:           pgdb.ReadPool(env, "ORDERS_DB"),
		brokers:        env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"}),
		catalogURLs:    env.List("CATALOG_URLS", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}),
		catalogTimeout: env.Duration("CATALOG_TIMEOUT", 2*time.Second),
		// Unpublished outbox rows per shard before POST answers 503.
		maxBacklog: env.Int("ORDERS_OUTBOX_MAX_BACKLOG", 20000),
		relay:      relay.DefaultConfig(),
		// Migrate every shard and exit: a Kubernetes init container (infra/k8s).
		migrateOnly: env.Bool("ORDERS_MIGRATE_ONLY", false),
	}
	s.relay.Batch = env.Int("ORDERS_RELAY_BATCH", s.relay.Batch)
	s.relay.Linger = env.Duration("ORDERS_RELAY_LINGER", s.relay.Linger)
	s.relay.IdempotencyTTL = env.Duration("ORDERS_IDEMPOTENCY_TTL", s.relay.IdempotencyTTL)
	if s.relay.IdempotencyTTL < 24*time.Hour {
		env.Fail("ORDERS_IDEMPOTENCY_TTL=%s: keys are kept at least 24h", s.relay.IdempotencyTTL)
	}
	if s.relay.Batch < 1 || s.maxBacklog < 1 {
		env.Fail("ORDERS_RELAY_BATCH and ORDERS_OUTBOX_MAX_BACKLOG must be positive")
	}
	s.capacity = httpserver.ReadCapacity(env)
	s.tel = telemetry.ReadConfig(env, "orders", telemetry.DefaultInstance("orders", s.addr))
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

	shards, err := ordersdb.OpenShards(ctx, cfg.shardDSNs, cfg.pool, tel.Registry)
	if err != nil {
		return err
	}
	defer shards.Close()
	if cfg.migrateOnly {
		log.Info("shards migrated", "shards", shards.Len())
		return nil
	}
	dbs := make([]*sql.DB, shards.Len())
	for i := range dbs {
		if dbs[i], err = shards.DB(i).DB(); err != nil {
			return err
		}
	}

	catalog, catalogChecks, err := catalogclient.Dial(ctx, cfg.catalogURLs, cfg.catalogTimeout, tel.Registry,
		func(err error) { log.Warn("catalog dns", "err", err) })
	if err != nil {
		return err
	}
	backlog := relay.NewBacklog(dbs, cfg.maxBacklog, 500*time.Millisecond, log, tel.Registry)
	watcher := ordersdb.NewWatcher(dbs, log)
	svc := orders.NewService(ordersdb.New(shards), catalog, backlog, shards.Len()).WithWaiter(watcher)

	// One Writer for the whole process: it batches across the shards'
	// relays. Topic unset: each message names its own.
	writer := kafkax.NewWriter(cfg.brokers, "")
	defer writer.Close()
	rel := relay.New(dbs, writer, cfg.relay, log, tel.Registry)

	r := httpserver.NewEngine(tel, httpserver.WithCapacity(cfg.capacity))
	// Kafka is deliberately not a readiness dependency: orders are accepted
	// into the outbox while it is down and published when it is back.
	httpserver.MountHealth(r, tel.Registry, 2*time.Second,
		httpserver.Check{Name: "shards", Check: shards.Ping},
	)
	httpapi.Mount(r, svc, log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, r), 10*time.Second) })
	g.Go(func() error { return httpserver.ServeProfiler(gctx, cfg.pprofAddr, log) })
	g.Go(func() error { return backlog.Run(gctx) })
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error { return rel.Run(gctx) })
	g.Go(func() error {
		catalogChecks(gctx)
		return nil
	})
	log.Info("listening", "addr", cfg.addr)
	return g.Wait()
}
