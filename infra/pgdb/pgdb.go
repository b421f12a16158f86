// Package pgdb opens gorm over pgx with pools sized on purpose and the
// OpenTelemetry plugin installed, and maps driver errors to problem
// categories so no store has to match on error strings.
package pgdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
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

// Translate is the one mapping from a database error to a problem
// category, for every store; it never looks at an error's text.
//
//   - An error that already has a category passes through unchanged.
//   - A unique violation is a conflict; unique names, for the client, what a
//     constraint protects (Unique("products_sku_key", "a product with sku %q
//     already exists", sku)); without one the client reads only that the
//     row already exists, never the driver's message.
//   - A serialization failure or deadlock is a conflict: the client may
//     retry the whole request.
//   - A lost or refused connection, before or in the middle of a query, a
//     server shutting down or refusing connections, a read-only standby, a
//     deadline: unavailable, 503 with Retry-After, so clients retry instead
//     of seeing a 500.
//
// Anything else (a bad statement, a scan into the wrong type) is a bug and
// stays uncategorised: a 500, logged once.
func Translate(err error, unique ...UniqueName) error {
	if err == nil || problem.Status(err) != http.StatusInternalServerError {
		return err
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch code := pgErr.Code; {
		case code == "23505": // unique_violation
			for _, u := range unique {
				if u.constraint == pgErr.ConstraintName {
					return fmt.Errorf("%w: %w", problem.Errorf(problem.ErrConflict, u.format, u.args...), err)
				}
			}
			return fmt.Errorf("%w: %w", problem.Errorf(problem.ErrConflict, "it already exists"), err)
		case code == "40001", code == "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%w: %w", problem.Errorf(problem.ErrConflict, "a concurrent change won; retry"), err)
		case strings.HasPrefix(code, "08"), // connection_exception
			code == "53300",                                   // too_many_connections
			code == "57P01", code == "57P02", code == "57P03", // admin shutdown, crash shutdown, cannot connect now
			code == "57014", // query_canceled (statement timeout or our deadline)
			code == "25006": // read_only_sql_transaction: a standby, or a primary being demoted
			return fmt.Errorf("%w: %w", problem.ErrUnavailable, err)
		}
		return err
	}
	if connectionLost(err) {
		return fmt.Errorf("%w: %w", problem.ErrUnavailable, err)
	}
	return err
}

// connectionLost reports an error of the connection rather than of the
// statement: refused at connect, reset or closed mid-query, timed out.
func connectionLost(err error) bool {
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// UniqueName is what one unique constraint protects, in the client's words.
type UniqueName struct {
	constraint string
	format     string
	args       []any
}

// Unique names constraint for Translate; the message is formatted only
// when that constraint is violated.
func Unique(constraint, format string, args ...any) UniqueName {
	return UniqueName{constraint: constraint, format: format, args: args}
}
