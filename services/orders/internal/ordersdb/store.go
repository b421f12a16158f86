// Package ordersdb keeps orders on their logical shards: one transaction per
// placement (order, items, idempotency key, outbox row) on the customer's
// shard, conditional status transitions for the workers, and the
// scatter-gather admin listing.
package ordersdb

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

//go:embed migrations/*.sql
var migrations embed.FS

// NotifyChannel is the LISTEN/NOTIFY channel a shard's relay waits on; every
// transaction that writes an outbox row notifies it on commit.
const NotifyChannel = "orders_outbox"

// Store is the sharded order store.
type Store struct {
	shards *shardmap.Shards
}

var _ orders.Store = (*Store)(nil)

// New wraps the shard pools.
func New(shards *shardmap.Shards) *Store { return &Store{shards: shards} }

// Migrate brings every shard's schema up to date. Clones start together, so
// each shard's migration runs under a Postgres advisory lock.
func Migrate(ctx context.Context, shards *shardmap.Shards) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	for i := range shards.Len() {
		sqlDB, err := shards.DB(i).DB()
		if err != nil {
			return err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
		if err != nil {
			return err
		}
		p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub,
			goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return fmt.Errorf("shard %d migrations: %w", i, err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("shard %d migrate: %w", i, err)
		}
	}
	return nil
}

// shardSpan marks the current span with the shard and returns the shard's pool.
func (s *Store) db(ctx context.Context, shard int) *gorm.DB {
	trace.SpanFromContext(ctx).SetAttributes(orders.ShardAttr.Int(shard))
	return s.shards.DB(shard).WithContext(ctx)
}

var errKeyTaken = errors.New("idempotency key taken")

// Place implements orders.Store.
func (s *Store) Place(ctx context.Context, p orders.Placement) (*orders.Order, bool, error) {
	o := p.Order
	headers := traceHeaders(ctx)
	err := s.db(ctx, o.ID.Shard).Transaction(func(tx *gorm.DB) error {
		if p.Key != "" {
			// First, so a racing request with the same key waits here on the
			// unique index until this transaction ends, then finds the key.
			res := tx.Exec(`INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id)
				VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, o.CustomerID, p.Key, p.RequestHash, o.ID.UUID)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return errKeyTaken
			}
		}
		if err := tx.Exec(`INSERT INTO orders (id, customer_id, status, reason, total_cents, currency, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, o.ID.UUID, o.CustomerID, string(o.Status), string(o.Reason),
			o.TotalCents, o.Currency, o.CreatedAt, o.UpdatedAt).Error; err != nil {
			return err
		}
		values := make([]string, len(o.Items))
		args := make([]any, 0, 5*len(o.Items))
		for i, it := range o.Items {
			values[i] = "(?, ?, ?, ?, ?)"
			args = append(args, o.ID.UUID, i, it.ProductID, it.Quantity, it.PriceCents)
		}
		if err := tx.Exec(`INSERT INTO order_items (order_id, line, product_id, quantity, price_cents) VALUES `+
			strings.Join(values, ", "), args...).Error; err != nil {
			return err
		}
		return insertEvent(tx, p.Event, headers)
	})
	if errors.Is(err, errKeyTaken) {
		prev, hash, err := s.ByKey(ctx, o.ID.Shard, o.CustomerID, p.Key)
		if err != nil {
			return nil, false, err
		}
		if hash != p.RequestHash {
			return nil, false, orders.ErrIdempotencyMismatch
		}
		return prev, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("place order on shard %d: %w", o.ID.Shard, pgdb.Translate(err))
	}
	return &o, true, nil
}

func insertEvent(tx *gorm.DB, ev orders.Event, headers string) error {
	if err := tx.Exec(`INSERT INTO outbox (topic, key, payload, headers) VALUES (?, ?, ?, ?::jsonb)`,
		ev.Topic, ev.Key, ev.Payload, headers).Error; err != nil {
		return err
	}
	return tx.Exec(`SELECT pg_notify(?, '')`, NotifyChannel).Error
}

// traceHeaders captures the writer's trace context for the outbox row: the
// relay publishes it later, from another goroutine or another clone.
func traceHeaders(ctx context.Context) string {
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	b, _ := json.Marshal(carrier)
	return string(b)
}

// ByKey implements orders.Store.
func (s *Store) ByKey(ctx context.Context, shard int, customerID, key string) (*orders.Order, string, error) {
	var row struct {
		RequestHash string
		OrderID     uuid.UUID
	}
	res := s.db(ctx, shard).Raw(`SELECT request_hash, order_id FROM idempotency_keys WHERE customer_id = ? AND key = ?`,
		customerID, key).Scan(&row)
	if res.Error != nil {
		return nil, "", fmt.Errorf("idempotency key: %w", pgdb.Translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return nil, "", fmt.Errorf("idempotency key: %w", problem.ErrNotFound)
	}
	o, err := s.Get(ctx, orders.ID{Shard: shard, UUID: row.OrderID})
	if err != nil {
		return nil, "", err
	}
	return o, row.RequestHash, nil
}

const selectOrder = `SELECT o.id, o.customer_id, o.status, o.reason, o.total_cents, o.currency, o.created_at, o.updated_at,
	(SELECT json_agg(json_build_object('product_id', i.product_id, 'quantity', i.quantity, 'price_cents', i.price_cents)
	        ORDER BY i.line)::text FROM order_items i WHERE i.order_id = o.id) AS items
	FROM orders o `

type orderRow struct {
	ID         uuid.UUID
	CustomerID string
	Status     string
	Reason     string
	TotalCents int64
	Currency   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Items      *string
}

func (r *orderRow) order(shard int) (orders.Order, error) {
	o := orders.Order{
		ID: orders.ID{Shard: shard, UUID: r.ID}, CustomerID: r.CustomerID,
		Status: orders.Status(r.Status), Reason: orders.Reason(r.Reason),
		TotalCents: r.TotalCents, Currency: r.Currency,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.Items != nil {
		if err := json.Unmarshal([]byte(*r.Items), &o.Items); err != nil {
			return o, fmt.Errorf("order %s items: %w", o.ID, err)
		}
	}
	return o, nil
}

func scanOrders(shard int, rows []orderRow) ([]orders.Order, error) {
	out := make([]orders.Order, 0, len(rows))
	for i := range rows {
		o, err := rows[i].order(shard)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id orders.ID) (*orders.Order, error) {
	var rows []orderRow
	if err := s.db(ctx, id.Shard).Raw(selectOrder+`WHERE o.id = ?`, id.UUID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("get order: %w", pgdb.Translate(err))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("order %s: %w", id, problem.ErrNotFound)
	}
	o, err := rows[0].order(id.Shard)
	return &o, err
}

// after builds the keyset condition "strictly older than c" for one shard,
// under the listing's total order (created_at, shard, id).
func after(c *orders.Cursor, shard int) (string, []any) {
	switch {
	case c == nil:
		return "TRUE", nil
	case shard < c.ID.Shard:
		return "o.created_at <= ?", []any{c.CreatedAt}
	case shard == c.ID.Shard:
		return "(o.created_at, o.id) < (?, ?)", []any{c.CreatedAt, c.ID.UUID}
	default:
		return "o.created_at < ?", []any{c.CreatedAt}
	}
}

// ListCustomer implements orders.Store: one shard, one index range.
func (s *Store) ListCustomer(ctx context.Context, shard int, customerID string, c *orders.Cursor, limit int) ([]orders.Order, error) {
	cond, args := after(c, shard)
	var rows []orderRow
	args = append([]any{customerID}, append(args, limit)...)
	if err := s.db(ctx, shard).Raw(selectOrder+`WHERE o.customer_id = ? AND `+cond+
		` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", pgdb.Translate(err))
	}
	return scanOrders(shard, rows)
}

// ListTimeout bounds each shard's part of the admin listing.
const ListTimeout = 2 * time.Second

// ListAll implements orders.Store: every shard in parallel, each bounded by
// ListTimeout and limit, merged newest first. One shard failing fails the
// page (503) rather than silently skipping its orders.
func (s *Store) ListAll(ctx context.Context, c *orders.Cursor, limit int) ([]orders.Order, error) {
	pages := make([][]orders.Order, s.shards.Len())
	g, gctx := errgroup.WithContext(ctx)
	for shard := range s.shards.Len() {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(gctx, ListTimeout)
			defer cancel()
			cond, args := after(c, shard)
			var rows []orderRow
			if err := s.shards.DB(shard).WithContext(ctx).Raw(selectOrder+`WHERE `+cond+
				` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, append(args, limit)...).Scan(&rows).Error; err != nil {
				return fmt.Errorf("list shard %d: %w", shard, pgdb.Translate(err))
			}
			page, err := scanOrders(shard, rows)
			pages[shard] = page
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return orders.MergeNewestFirst(pages, limit), nil
}

// Finalize moves o from pending to its final status (o.Status, o.Reason,
// o.UpdatedAt) and writes its orders.status event, in one transaction and
// only if it is still pending: it reports false, writing nothing, when
// another delivery already decided. This is what makes a redelivered
// message harmless.
func (s *Store) Finalize(ctx context.Context, o *orders.Order) (bool, error) {
	headers := traceHeaders(ctx)
	var applied bool
	err := s.db(ctx, o.ID.Shard).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE id = ? AND status = 'pending'`,
			string(o.Status), string(o.Reason), o.UpdatedAt, o.ID.UUID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		applied = true
		return insertEvent(tx, orders.StatusEventOf(o), headers)
	})
	if err != nil {
		return false, fmt.Errorf("finalize order %s: %w", o.ID, pgdb.Translate(err))
	}
	return applied, nil
}
