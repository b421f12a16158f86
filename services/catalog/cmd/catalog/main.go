// Command catalog serves products from Postgres (writes to the primary,
// reads from the streaming replica) behind memcached.
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

func main() { lifecycle.Main("catalog", run) }

type settings struct {
	addr       string
	primaryDSN string
	replicaDSN string
	memcached  []string
	pool       pgdb.Pool
	tel        telemetry.Config
}

func readSettings(getenv func(string) string) (settings, []string, error) {
	env := config.New(getenv)
	s := settings{
		addr:       env.String("HTTP_ADDR", "127.0.0.1:8081"),
		primaryDSN: env.String("CATALOG_PRIMARY_DSN", "postgres://scaleshop@127.0.0.1:5433/catalog?sslmode=disable"),
		replicaDSN: env.String("CATALOG_REPLICA_DSN", "postgres://scaleshop@127.0.0.1:5434/catalog?sslmode=disable"),
		memcached:  env.List("MEMCACHED_SERVERS", []string{"127.0.0.1:11211", "127.0.0.1:11212"}),
		pool:       pgdb.ReadPool(env, "CATALOG_DB"),
	}
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

	primary, err := pgdb.Open(ctx, cfg.primaryDSN, cfg.pool, "primary")
	if err != nil {
		return err
	}
	defer pgdb.Close(primary)
	replica, err := pgdb.Open(ctx, cfg.replicaDSN, cfg.pool, "replica")
	if err != nil {
		return err
	}
	defer pgdb.Close(replica)
	mc := memcache.New(cfg.memcached...)
	mc.Timeout = 100 * time.Millisecond
	mc.MaxIdleConns = 64

	r := httpserver.NewEngine(tel)
	httpserver.MountHealth(r, tel.Registry, 2*time.Second,
		httpserver.Check{Name: "primary", Check: func(ctx context.Context) error { return pgdb.Ping(ctx, primary) }},
		httpserver.Check{Name: "replica", Check: func(ctx context.Context) error { return pgdb.Ping(ctx, replica) }},
		httpserver.Check{Name: "memcached", Check: func(context.Context) error { return mc.Ping() }},
	)
	mountSkeleton(r, replica, log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.Serve(gctx, httpserver.Server(cfg.addr, r), 10*time.Second) })
	log.Info("listening", "addr", cfg.addr)
	return g.Wait()
}

// mountSkeleton answers the product list until the catalog issue lands: it
// proves the path gateway -> clone -> replica works end to end.
func mountSkeleton(r *gin.Engine, replica *gorm.DB, log *slog.Logger) {
	r.GET("/api/products", func(c *gin.Context) {
		var inRecovery bool
		if err := replica.WithContext(c.Request.Context()).Raw("SELECT pg_is_in_recovery()").Scan(&inRecovery).Error; err != nil {
			httpserver.WriteError(c, log, pgdb.Translate(err))
			return
		}
		c.JSON(http.StatusOK, gin.H{"items": []any{}, "next_cursor": ""})
	})
}
