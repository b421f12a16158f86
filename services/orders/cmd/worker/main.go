// Command worker consumes orders.placed in one consumer group: it reserves
// stock, decides payment and moves each order to its final status.
package main

import (
	"context"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/catalogclient"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
	"github.com/scaleshop/scaleshop/services/orders/internal/worker"
)

func main() { lifecycle.Main("worker", run) }

// ConsumerGroup is the one group every worker joins.
const ConsumerGroup = "orders-workers"

type settings struct {
	capacity       httpserver.Capacity // back pressure: what the process does past its CPU quota
	addr           string
	pprofAddr      string
	shardDSNs      []string
	pool           pgdb.Pool
	brokers        []string
	catalogURLs    []string
	catalogTimeout time.Duration
	worker         worker.Config
	tel            telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:           env.String("HTTP_ADDR", "127.0.0.1:8191"),
		pprofAddr:      httpserver.ReadProfilerAddr(env),
		shardDSNs:      shardmap.ReadDSNs(env),
		pool:           pgdb.ReadPool(env, "ORDERS_DB"),
		brokers:        env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"}),
		catalogURLs:    env.List("CATALOG_URLS", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}),
		catalogTimeout: env.Duration("CATALOG_TIMEOUT", 2*time.Second),
		worker:         worker.DefaultConfig(topology.LogicalShards),
	}
	// The longest wait between two tries of an order whose dependency
	// fails: how late, at most, an order notices the catalog is back.
	s.worker.BackoffMax = env.Duration("WORKER_BACKOFF_MAX", s.worker.BackoffMax)
	// Concurrency per partition (vertical scaling of one worker): orders of
	// one customer stay in order on one lane.
	s.worker.KeyLanes = env.Int("WORKER_KEY_LANES", s.worker.KeyLanes)
	// Offset commits coalesce over this long: fewer broker requests, at
	// the cost of redelivering what finished within it after a crash.
	s.worker.CommitEvery = env.Duration("WORKER_COMMIT_EVERY", s.worker.CommitEvery)
	if s.worker.CommitEvery < 0 {
		env.Fail("WORKER_COMMIT_EVERY must not be negative")
	}
	if s.worker.KeyLanes < 1 {
		env.Fail("WORKER_KEY_LANES must be at least 1")
	}
	if s.worker.BackoffMax < s.worker.BackoffMin {
		env.Fail("WORKER_BACKOFF_MAX must be at least %s", s.worker.BackoffMin)
	}
	s.capacity = httpserver.ReadCapacity(env)
	s.tel = telemetry.ReadConfig(env, "worker", telemetry.DefaultInstance("worker", s.addr))
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

	catalog, catalogChecks, err := catalogclient.Dial(ctx, cfg.catalogURLs, cfg.catalogTimeout, tel.Registry,
		func(err error) { log.Warn("catalog dns", "err", err) })
	if err != nil {
		return err
	}
	dlq := kafkax.NewWriter(cfg.brokers, topology.TopicOrdersPlacedDLQ)
	defer dlq.Close()
	rc := kafkax.ReaderConfig(cfg.brokers, topology.TopicOrdersPlaced, ConsumerGroup)
	cfg.worker.Group = ConsumerGroup
	// kafka-go waits 5 s between group (re)join attempts, and a rejoin after
	// a broker restart takes several: with this, the group is back within
	// seconds of Kafka rather than 15-20 s.
	rc.JoinGroupBackoff = 500 * time.Millisecond
	reader := kafka.NewReader(rc)
	defer reader.Close()
	metrics := worker.NewMetrics(tel.Registry)
	store := ordersdb.New(shards)
	w := worker.New(store, catalog, dlq, cfg.worker, log, metrics)

	r := httpserver.NewEngine(tel, httpserver.WithCapacity(cfg.capacity))
	httpserver.MountHealth(r, tel.Registry, 2*time.Second,
		httpserver.Check{Name: "shards", Check: shards.Ping},
		httpserver.Check{Name: "kafka", Check: func(ctx context.Context) error { return kafkax.Ping(ctx, cfg.brokers) }},
	)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, r), 10*time.Second) })
	g.Go(func() error { return httpserver.ServeProfiler(gctx, cfg.pprofAddr, log) })
	g.Go(func() error { return w.Run(gctx, reader) })
	g.Go(func() error {
		metrics.WatchReader(gctx, reader, 5*time.Second)
		return nil
	})
	g.Go(func() error {
		metrics.WatchPending(gctx, store, topology.LogicalShards, 5*time.Second, log)
		return nil
	})
	g.Go(func() error {
		catalogChecks(gctx)
		return nil
	})
	log.Info("listening", "addr", cfg.addr)
	return g.Wait()
}
