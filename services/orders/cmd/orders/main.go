// Command orders is the orders API: it accepts orders at once (202) on the
// customer's logical shard and relays them to Kafka through an outbox.
package main

import (
	"context"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

func main() { lifecycle.Main("orders", run) }

type settings struct {
	addr        string
	shardDSNs   []string
	pool        pgdb.Pool
	brokers     []string
	catalogURLs []string
	tel         telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:        env.String("HTTP_ADDR", "127.0.0.1:8091"),
		shardDSNs:   shardmap.ReadDSNs(env),
		pool:        pgdb.ReadPool(env, "ORDERS_DB"),
		brokers:     env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"}),
		catalogURLs: env.List("CATALOG_URLS", []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}),
	}
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

	shards, err := shardmap.Open(ctx, cfg.shardDSNs, cfg.pool)
	if err != nil {
		return err
	}
	defer shards.Close()

	r := httpserver.NewEngine(tel)
	httpserver.MountHealth(r, tel.Registry, 2*time.Second,
		httpserver.Check{Name: "shards", Check: shards.Ping},
		httpserver.Check{Name: "kafka", Check: func(ctx context.Context) error { return kafkax.Ping(ctx, cfg.brokers) }},
	)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, r), 10*time.Second) })
	log.Info("listening", "addr", cfg.addr)
	return g.Wait()
}
