// Package catalogdb is the catalog's Postgres store: writes and transactions
// on the primary, reads on the streaming replica when it is fresh enough
// (see readPath), schema migrations and the seed applied at start.
//
// The split uses two gorm handles rather than gorm.io/plugin/dbresolver:
// every read here decides per request (consistency token, replica lag,
// server health), which a static resolver policy cannot, and two handles
// opened by infra/pgdb give each SQL span the role of the server it ran on.
package catalogdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// Store implements catalog.Store on a primary and a replica.
type Store struct {
	primary, replica *gorm.DB
	rp               *readPath
	writeTimeout     time.Duration
}

var _ catalog.Store = (*Store)(nil)

// Config tunes a Store.
type Config struct {
	ReadPath     ReadPathConfig
	WriteTimeout time.Duration // bounds every write, so none hangs
}

// New wraps two opened databases (pgdb.Open with roles "primary" and
// "replica"), counts their queries and takes one health probe, so the
// first request already routes on facts.
func New(ctx context.Context, primary, replica *gorm.DB, cfg Config, reg prometheus.Registerer) (*Store, error) {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "catalog_db_queries_total",
		Help: "SQL statements sent, by server role.",
	}, []string{"role"})
	reg.MustRegister(queries)
	for role, db := range map[string]*gorm.DB{"primary": primary, "replica": replica} {
		if err := countQueries(db, queries.WithLabelValues(role)); err != nil {
			return nil, err
		}
	}
	pSQL, err := primary.DB()
	if err != nil {
		return nil, err
	}
	rSQL, err := replica.DB()
	if err != nil {
		return nil, err
	}
	s := &Store{primary: primary, replica: replica, writeTimeout: cfg.WriteTimeout,
		rp: newReadPath(cfg.ReadPath, pSQL, rSQL, reg)}
	s.rp.probe(ctx)
	return s, nil
}

// Run keeps the read path's view of both servers fresh until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	s.rp.run(ctx)
	return nil
}

// Ready reports whether reads can be served: either server answers.
// A dead primary does not make the catalog unready: reads go on.
func (s *Store) Ready(context.Context) error {
	h := s.rp.health()
	if !h.primaryUp && !h.replicaUp {
		return fmt.Errorf("neither the primary nor the replica answers")
	}
	return nil
}

// countQueries registers a callback after every statement kind gorm runs.
func countQueries(db *gorm.DB, c prometheus.Counter) error {
	count := func(tx *gorm.DB) {
		c.Inc()
		catalog.CountQuery(tx.Statement.Context)
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("catalog:count", count),
		cb.Row().After("gorm:row").Register("catalog:count", count),
		cb.Raw().After("gorm:raw").Register("catalog:count", count),
		cb.Create().After("gorm:create").Register("catalog:count", count),
		cb.Update().After("gorm:update").Register("catalog:count", count),
		cb.Delete().After("gorm:delete").Register("catalog:count", count),
	} {
		if err != nil {
			return fmt.Errorf("register query counter: %w", err)
		}
	}
	return nil
}

// productRow is the products table as gorm scans it.
type productRow struct {
	ID          int64
	SKU         string `gorm:"column:sku"`
	Name        string
	Description string
	Category    string
	PriceCents  int64
	Currency    string
	Stock       int64
	Attributes  []byte
	Version     int64
	UpdatedAt   time.Time
}

func (r productRow) product() catalog.Product {
	return catalog.Product{ID: r.ID, Version: r.Version, UpdatedAt: r.UpdatedAt.UTC(), Input: catalog.Input{
		SKU: r.SKU, Name: r.Name, Description: r.Description, Category: r.Category,
		PriceCents: r.PriceCents, Currency: r.Currency, Stock: r.Stock, Attributes: r.Attributes}}
}

func products(rows []productRow) []catalog.Product {
	out := make([]catalog.Product, len(rows))
	for i, r := range rows {
		out[i] = r.product()
	}
	return out
}

const columns = `id, sku, name, description, category, price_cents, currency, stock, attributes, version, updated_at`

// selectByIDs reads the products among a list of ids.
const selectByIDs = `SELECT ` + columns + ` FROM products WHERE id IN ?`

// read runs q on the server the read path picks; if that server turns out
// to be unreachable it is marked down and the other one answers instead.
func (s *Store) read(ctx context.Context, o catalog.ReadOpts, q func(db *gorm.DB) error) (catalog.Source, error) {
	src := s.rp.source(o.After)
	err := q(s.handle(src).WithContext(ctx))
	if err == nil {
		return src, nil
	}
	err = pgdb.Translate(err)
	if !errors.Is(err, problem.ErrUnavailable) || ctx.Err() != nil {
		return src, err
	}
	s.rp.markDown(src)
	other := catalog.FromPrimary
	if src == catalog.FromPrimary {
		other = catalog.FromReplica
	}
	if err := q(s.handle(other).WithContext(ctx)); err != nil {
		return other, pgdb.Translate(err)
	}
	return other, nil
}

func (s *Store) handle(src catalog.Source) *gorm.DB {
	if src == catalog.FromPrimary {
		return s.primary
	}
	return s.replica
}

// write runs fn on the primary within the write timeout and returns the
// primary's WAL position after the commit: the consistency token. A primary
// known to be down fails at once (503), without waiting for a connection.
func (s *Store) write(ctx context.Context, fn func(db *gorm.DB) error) (catalog.LSN, error) {
	return s.writeToken(ctx, true, fn)
}

// writeToken is write; token false skips the extra LSN query for callers
// that return no token (reservations).
func (s *Store) writeToken(ctx context.Context, token bool, fn func(db *gorm.DB) error) (catalog.LSN, error) {
	if !s.rp.health().primaryUp {
		return 0, fmt.Errorf("primary is down: %w", problem.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	db := s.primary.WithContext(ctx)
	if err := fn(db); err != nil {
		err = pgdb.Translate(err)
		if errors.Is(err, problem.ErrUnavailable) && ctx.Err() == nil {
			s.rp.markDown(catalog.FromPrimary)
		}
		return 0, err
	}
	if !token {
		return 0, nil
	}
	var lsn string
	if err := db.Raw(`SELECT pg_current_wal_lsn()::text`).Find(&lsn).Error; err != nil {
		// Committed, but no token: the caller still gets its result; a read
		// without a token may be stale, which the contract allows.
		return 0, nil
	}
	lsnToken, _ := catalog.ParseLSN(lsn)
	return lsnToken, nil
}

// Get reads one product.
func (s *Store) Get(ctx context.Context, id int64, o catalog.ReadOpts) (catalog.Product, catalog.Source, error) {
	var rows []productRow
	src, err := s.read(ctx, o, func(db *gorm.DB) error {
		return db.Raw(`SELECT `+columns+` FROM products WHERE id = ?`, id).Find(&rows).Error
	})
	if err != nil {
		return catalog.Product{}, src, err
	}
	if len(rows) == 0 && src == catalog.FromReplica {
		if found, ok := s.onPrimary(ctx, []int64{id}); ok {
			rows, src = found, catalog.FromPrimary
		}
	}
	if len(rows) == 0 {
		return catalog.Product{}, src, problem.Errorf(problem.ErrNotFound, "no product %d", id)
	}
	return rows[0].product(), src, nil
}

// onPrimary reads ids on the primary, for products the replica did not
// have. A replica within its lag bound may not have replayed a product
// created a moment ago, and "no such product" is an answer callers act on:
// the orders API rejects the order, the cache keeps a tombstone for
// NegativeTTL. So absence is the primary's word whenever it can give it;
// ok is false when it cannot (down, hung past a probe's deadline, or
// failing), and the replica's answer stands. It costs a primary query only
// for ids that do not exist, which the cache's tombstones then absorb.
func (s *Store) onPrimary(ctx context.Context, ids []int64) ([]productRow, bool) {
	if !s.rp.health().primaryUp {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.rp.cfg.Timeout)
	defer cancel()
	var rows []productRow
	err := s.primary.WithContext(ctx).Raw(selectByIDs, ids).Find(&rows).Error
	if err != nil {
		if errors.Is(pgdb.Translate(err), problem.ErrUnavailable) && ctx.Err() == nil {
			s.rp.markDown(catalog.FromPrimary)
		}
		return nil, false
	}
	return rows, true
}

// GetMany reads the products that exist among ids, in the order of ids.
func (s *Store) GetMany(ctx context.Context, ids []int64, o catalog.ReadOpts) ([]catalog.Product, catalog.Source, error) {
	if len(ids) == 0 {
		return nil, s.rp.source(o.After), nil
	}
	var rows []productRow
	src, err := s.read(ctx, o, func(db *gorm.DB) error {
		return db.Raw(selectByIDs, ids).Find(&rows).Error
	})
	if err != nil {
		return nil, src, err
	}
	byID := make(map[int64]catalog.Product, len(rows))
	for _, r := range rows {
		byID[r.ID] = r.product()
	}
	var missing []int64
	for _, id := range ids {
		if _, ok := byID[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 && src == catalog.FromReplica {
		if found, ok := s.onPrimary(ctx, missing); ok && len(found) > 0 {
			for _, r := range found {
				byID[r.ID] = r.product()
			}
			src = catalog.FromPrimary
		}
	}
	out := make([]catalog.Product, 0, len(byID))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
		}
	}
	return out, src, nil
}

// List reads one page ordered by id, after the cursor.
func (s *Store) List(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Page, catalog.Source, error) {
	where := []string{"id > ?"}
	args := []any{q.AfterID}
	if q.Category != "" {
		where = append(where, "category = ?")
		args = append(args, q.Category)
	}
	if q.Q != "" {
		pattern := "%" + likeEscaper.Replace(q.Q) + "%"
		where = append(where, "(name ILIKE ? OR description ILIKE ?)")
		args = append(args, pattern, pattern)
	}
	args = append(args, q.Limit+1) // one more tells whether a next page exists
	var rows []productRow
	src, err := s.read(ctx, o, func(db *gorm.DB) error {
		return db.Raw(`SELECT `+columns+` FROM products WHERE `+strings.Join(where, " AND ")+
			` ORDER BY id LIMIT ?`, args...).Find(&rows).Error
	})
	if err != nil {
		return catalog.Page{}, src, err
	}
	page := catalog.Page{Items: products(rows)}
	if len(rows) > q.Limit {
		page.Items = page.Items[:q.Limit]
		page.NextCursor = catalog.EncodeCursor(page.Items[q.Limit-1].ID)
	}
	return page, src, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Create inserts a product; a taken sku is a conflict.
func (s *Store) Create(ctx context.Context, in catalog.Input) (catalog.Product, catalog.LSN, error) {
	var rows []productRow
	token, err := s.write(ctx, func(db *gorm.DB) error {
		err := db.Raw(`INSERT INTO products (sku, name, description, category, price_cents, currency, stock, attributes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb) RETURNING `+columns,
			in.SKU, in.Name, in.Description, in.Category, in.PriceCents, in.Currency, in.Stock, string(in.Attributes)).
			Find(&rows).Error
		return pgdb.Translate(err, skuTaken(in.SKU))
	})
	if err != nil {
		return catalog.Product{}, 0, err
	}
	return rows[0].product(), token, nil
}

// skuTaken names the products table's UNIQUE (sku) constraint, under the
// name Postgres gives it (table_column_key), for the client.
func skuTaken(sku string) pgdb.UniqueName {
	return pgdb.Unique("products_sku_key", "a product with sku %q already exists", sku)
}

// Update replaces a product's fields and bumps its version.
func (s *Store) Update(ctx context.Context, id int64, in catalog.Input, ifVersion int64) (catalog.Product, catalog.LSN, error) {
	var rows []productRow
	token, err := s.write(ctx, func(db *gorm.DB) error {
		err := db.Raw(`UPDATE products SET sku = ?, name = ?, description = ?, category = ?, price_cents = ?,
			currency = ?, stock = ?, attributes = ?::jsonb, version = version + 1, updated_at = now()
			WHERE id = ? AND (? = 0 OR version = ?) RETURNING `+columns,
			in.SKU, in.Name, in.Description, in.Category, in.PriceCents, in.Currency, in.Stock,
			string(in.Attributes), id, ifVersion, ifVersion).Find(&rows).Error
		if err != nil {
			return pgdb.Translate(err, skuTaken(in.SKU))
		}
		if len(rows) == 0 {
			return missingOrStale(db, id, ifVersion)
		}
		return nil
	})
	if err != nil {
		return catalog.Product{}, 0, err
	}
	return rows[0].product(), token, nil
}

// Delete removes a product.
func (s *Store) Delete(ctx context.Context, id int64, ifVersion int64) (catalog.LSN, error) {
	return s.write(ctx, func(db *gorm.DB) error {
		res := db.Exec(`DELETE FROM products WHERE id = ? AND (? = 0 OR version = ?)`, id, ifVersion, ifVersion)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return missingOrStale(db, id, ifVersion)
		}
		return nil
	})
}

// missingOrStale explains why a conditional write touched no row.
func missingOrStale(db *gorm.DB, id, ifVersion int64) error {
	var version []int64
	if err := db.Raw(`SELECT version FROM products WHERE id = ?`, id).Find(&version).Error; err != nil {
		return err
	}
	if len(version) == 0 {
		return problem.Errorf(problem.ErrNotFound, "no product %d", id)
	}
	return problem.Errorf(problem.ErrPreconditionFailed, "product %d is at version %d, not %d", id, version[0], ifVersion)
}
