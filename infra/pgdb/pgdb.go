// Package pgdb opens gorm over pgx with pools sized on purpose and the
// OpenTelemetry plugin installed, and maps driver errors to problem
// categories so no store has to match on error strings.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/attribute"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/opentelemetry/tracing"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/problem"
)

// Pool sizes one connection pool. database/sql keeps only 2 idle connections
// by default, which opens and closes connections under load, so MaxIdle
// equals MaxOpen here.
type Pool struct {
	MaxOpen     int
	MaxLifetime time.Duration
	MaxIdleTime time.Duration
}

// ReadPool reads PREFIX_POOL_MAX etc. On 2 cores a small pool beats a big one
// (pgbench: 48k tps with 2 clients, 13k with 32), hence the default of 8.
func ReadPool(env *config.Env, prefix string) Pool {
	return Pool{
		MaxOpen:     env.Int(prefix+"_POOL_MAX", 8),
		MaxLifetime: env.Duration(prefix+"_POOL_MAX_LIFETIME", 30*time.Minute),
		MaxIdleTime: env.Duration(prefix+"_POOL_MAX_IDLE_TIME", 5*time.Minute),
	}
}

// Open connects to dsn; role ("primary", "replica", "shard-3") is recorded on
// every SQL span so a trace shows which server answered.
func Open(ctx context.Context, dsn string, pool Pool, role string) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{
		// Single statements need no transaction; explicit ones are unaffected.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		TranslateError:         false,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", role, err)
	}
	if err := db.Use(tracing.NewPlugin(
		tracing.WithoutMetrics(),
		// Bound values can carry personal data; statements are enough.
		tracing.WithoutQueryVariables(),
		tracing.WithDBSystem("postgresql"),
		tracing.WithAttributes(append(serverAttrs(dsn), dbRole.String(role))...),
	)); err != nil {
		return nil, fmt.Errorf("tracing plugin: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(pool.MaxOpen)
	sqlDB.SetMaxIdleConns(pool.MaxOpen)
	sqlDB.SetConnMaxLifetime(pool.MaxLifetime)
	sqlDB.SetConnMaxIdleTime(pool.MaxIdleTime)
	return db, nil
}

// serverAttrs names the server a DSN points at, the way OpenTelemetry's
// database conventions do (server.address, server.port), so a slow or
// failing SQL span says which Postgres answered. A DSN that does not parse
// fails at connect time instead, with a clearer error.
func serverAttrs(dsn string) []attribute.KeyValue {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil
	}
	return []attribute.KeyValue{attribute.String("server.address", cfg.Host), attribute.Int("server.port", int(cfg.Port))}
}

// RegisterPoolMetrics exports the pool's database/sql statistics (open,
// in use, idle, and above all waits for a free connection: the sign a pool
// is too small) as go_sql_* metrics labelled db_name=role.
func RegisterPoolMetrics(reg prometheus.Registerer, db *gorm.DB, role string) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return reg.Register(collectors.NewDBStatsCollector(sqlDB, role))
}

// Ping checks the server answers a query, bounded by ctx.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Translate maps a driver error to a problem category, keeping the original
// in the chain for logs: not found, unique violation, serialization failure,
// and connection loss (unavailable, so clients retry instead of seeing 500).
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%w: %w", problem.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", problem.ErrConflict, err)
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%w: %w", problem.ErrConflict, err)
		case "57P01", "57P02", "57P03", "25006": // admin shutdown, crash, cannot connect now, read-only
			return fmt.Errorf("%w: %w", problem.ErrUnavailable, err)
		}
		return err
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", problem.ErrUnavailable, err)
	}
	return err
}
