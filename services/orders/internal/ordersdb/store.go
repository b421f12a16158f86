// Package ordersdb keeps orders on their logical shards: one transaction per
// placement (order, items, idempotency key, outbox row) on the customer's
// shard, conditional status transitions for the workers, and the
// scatter-gather admin listing.
package ordersdb

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/prometheus/client_golang/prometheus"
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

// OpenShards is how both orders binaries start: connect to every logical
// shard, export the pools' statistics on reg, and bring each schema up to
// date.
func OpenShards(ctx context.Context, dsns []string, pool pgdb.Pool, reg prometheus.Registerer) (*shardmap.Shards, error) {
	shards, err := shardmap.Open(ctx, dsns, pool)
	if err != nil {
		return nil, err
	}
	if err := shards.RegisterMetrics(reg); err != nil {
		shards.Close()
		return nil, err
	}
	if err := Migrate(ctx, shards); err != nil {
		shards.Close()
		return nil, err
	}
	return shards, nil
}

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

// Place implements orders.Store. The whole placement is one SQL statement
// (data-modifying CTEs), so it is atomic without an explicit transaction
// and costs one round trip: the idempotency key is inserted first, and the
// order, its items and its outbox row are inserted only if the key was new.
// A racing request with the same key waits on the key's unique index until
// this statement's transaction ends, then inserts nothing and reads the
// winner.
func (s *Store) Place(ctx context.Context, p orders.Placement) (*orders.Order, bool, error) {
	o := p.Order
	args := []any{}
	key := `k AS (SELECT 1)`
	if p.Key != "" {
		key = `k AS (INSERT INTO idempotency_keys (customer_id, key, request_hash, order_id)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1)`
		args = append(args, o.CustomerID, p.Key, p.RequestHash, o.ID.UUID)
	}
	args = append(args, o.ID.UUID, o.CustomerID, string(o.Status), string(o.Reason), o.TotalCents, o.Currency, o.CreatedAt, o.UpdatedAt)
	values := make([]string, len(o.Items))
	for i, it := range o.Items {
		values[i] = "(?::int, ?::bigint, ?::int, ?::bigint)"
		args = append(args, i, it.ProductID, it.Quantity, it.PriceCents)
	}
	args = append(args, p.Event.Topic, p.Event.Key, p.Event.Payload, traceHeaders(ctx), NotifyChannel)
	var created int
	err := s.db(ctx, o.ID.Shard).Raw(`WITH `+key+`,
		o AS (INSERT INTO orders (id, customer_id, status, reason, total_cents, currency, created_at, updated_at)
			SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM k) RETURNING id),
		i AS (INSERT INTO order_items (order_id, line, product_id, quantity, price_cents)
			SELECT o.id, v.line, v.product_id, v.quantity, v.price_cents
			FROM o, (VALUES `+strings.Join(values, ", ")+`) AS v (line, product_id, quantity, price_cents)),
		x AS (INSERT INTO outbox (topic, key, payload, headers) SELECT ?, ?, ?, ?::jsonb FROM o RETURNING 1)
		SELECT count(*) FROM (SELECT pg_notify(?, '') FROM x) AS notified`, args...).Find(&created).Error
	if err != nil {
		return nil, false, fmt.Errorf("place order on shard %d: %w", o.ID.Shard, pgdb.Translate(err))
	}
	if created == 1 {
		return &o, true, nil
	}
	prev, hash, err := s.ByKey(ctx, o.ID.Shard, o.CustomerID, p.Key)
	if err != nil {
		return nil, false, err
	}
	if hash != p.RequestHash {
		return nil, false, orders.ErrIdempotencyMismatch
	}
	return prev, false, nil
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
		customerID, key).Find(&row)
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
	if err := s.db(ctx, id.Shard).Raw(selectOrder+`WHERE o.id = ?`, id.UUID).Find(&rows).Error; err != nil {
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
		` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, args...).Find(&rows).Error; err != nil {
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
				` ORDER BY o.created_at DESC, o.id DESC LIMIT ?`, append(args, limit)...).Find(&rows).Error; err != nil {
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
// o.UpdatedAt) and writes its orders.status event, in one statement and
// only if it is still pending (waking the long polls of that order): it reports false, writing nothing, when
// another delivery already decided. This is what makes a redelivered
// message harmless.
func (s *Store) Finalize(ctx context.Context, o *orders.Order) (bool, error) {
	ev := orders.StatusEventOf(o)
	var applied int
	err := s.db(ctx, o.ID.Shard).Raw(`WITH
		u AS (UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE id = ? AND status = 'pending' RETURNING id),
		x AS (INSERT INTO outbox (topic, key, payload, headers) SELECT ?, ?, ?, ?::jsonb FROM u RETURNING 1)
		SELECT count(*) FROM (SELECT pg_notify(?, ''), pg_notify(?, ?) FROM x, u) AS notified`,
		string(o.Status), string(o.Reason), o.UpdatedAt, o.ID.UUID,
		ev.Topic, ev.Key, ev.Payload, traceHeaders(ctx), NotifyChannel, StatusChannel, string(ev.Payload)).Find(&applied).Error
	if err != nil {
		return false, fmt.Errorf("finalize order %s: %w", o.ID, pgdb.Translate(err))
	}
	return applied == 1, nil
}

// OldestPending reports when the shard's oldest pending order was accepted
// (ok false when none is pending). A partial index keeps it one row read.
func (s *Store) OldestPending(ctx context.Context, shard int) (time.Time, bool, error) {
	// min() of no rows is NULL: a shard with nothing pending.
	var oldest sql.NullTime
	if err := s.shards.DB(shard).WithContext(ctx).Raw(`SELECT min(created_at) FROM orders WHERE status = 'pending'`).
		Row().Scan(&oldest); err != nil {
		return time.Time{}, false, fmt.Errorf("oldest pending order of shard %d: %w", shard, pgdb.Translate(err))
	}
	if !oldest.Valid {
		return time.Time{}, false, nil
	}
	return oldest.Time.UTC(), true, nil
}

// StuckPending lists, oldest first, the orders of every shard still pending
// after acceptedBefore, at most limit per shard. One shard failing fails
// the list, as in ListAll: a partial list would hide stuck orders.
func (s *Store) StuckPending(ctx context.Context, acceptedBefore time.Time, limit int) ([]orders.Order, error) {
	pages := make([][]orders.Order, s.shards.Len())
	g, gctx := errgroup.WithContext(ctx)
	for shard := range s.shards.Len() {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(gctx, ListTimeout)
			defer cancel()
			var rows []orderRow
			if err := s.shards.DB(shard).WithContext(ctx).Raw(selectOrder+`WHERE o.status = 'pending' AND o.created_at < ?
				ORDER BY o.created_at LIMIT ?`, acceptedBefore, limit).Find(&rows).Error; err != nil {
				return fmt.Errorf("stuck orders of shard %d: %w", shard, pgdb.Translate(err))
			}
			page, err := scanOrders(shard, rows)
			pages[shard] = page
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []orders.Order
	for _, p := range pages {
		out = append(out, p...)
	}
	slices.SortFunc(out, func(a, b orders.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}
