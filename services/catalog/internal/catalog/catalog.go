// Package catalog is the catalog's domain: products, the rules a product
// must follow, stock reservations for orders, and the Store interface the
// HTTP layer needs. It imports no web framework, ORM or cache client; the
// gorm store (catalogdb) and the memcached decorator (catalogcache) both
// implement Store, so the cache can be switched off without touching the API.
package catalog

import (
	"context"
	"encoding/json"
	"time"
)

// Product is one catalog entry, in the JSON shape the public API answers
// (docs/catalog.md): id, the Input fields, version, updated_at.
type Product struct {
	ID int64 `json:"id"`
	Input
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Input is what an admin sends to create or replace a product: every
// mutable field. id, version and updated_at belong to the server.
type Input struct {
	SKU         string          `json:"sku"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Category    string          `json:"category"`
	PriceCents  int64           `json:"price_cents"`
	Currency    string          `json:"currency"`
	Stock       int64           `json:"stock"`
	Attributes  json.RawMessage `json:"attributes"` // always a JSON object once validated
}

// ListQuery selects one page of products, ordered by id.
type ListQuery struct {
	Category string // exact match; "" for all
	Q        string // case-insensitive substring of name or description
	Limit    int    // 1..MaxLimit
	AfterID  int64  // the cursor: the last id of the previous page
}

// Page is one page of a list. NextCursor is "" on the last page.
type Page struct {
	Items      []Product `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// Source says what served a read: the cache, the replica or the primary.
// The API returns it as X-Served-From so a curl user sees the read path.
type Source string

// The read sources.
const (
	FromCache   Source = "cache"
	FromReplica Source = "replica"
	FromPrimary Source = "primary"
)

// ReadOpts are the consistency wishes of one read.
type ReadOpts struct {
	// After is a consistency token from an earlier write: the read must see
	// the database at least as of that WAL position (read-your-writes).
	After LSN
	// NoCache skips the server-side cache (the client sent
	// Cache-Control: no-cache); the database still routes as usual.
	NoCache bool
}

// ReservationItem is one line of an order to reserve.
type ReservationItem struct {
	ProductID int64 `json:"product_id"`
	Quantity  int64 `json:"quantity"`
}

// ReservationRequest asks to reserve the stock of one order's items.
type ReservationRequest struct {
	OrderID string            `json:"order_id"`
	Items   []ReservationItem `json:"items"`
}

// Reservation statuses.
const (
	StatusReserved   = "reserved"
	StatusOutOfStock = "out_of_stock"
	StatusReleased   = "released"
)

// Reservation is the stored outcome of a reservation, keyed by order id.
type Reservation struct {
	OrderID string            `json:"order_id"`
	Status  string            `json:"status"`
	Items   []ReservationItem `json:"items,omitempty"`
}

// Store is everything the HTTP layer needs from the catalog. Writes return
// the consistency token of their commit; reservation calls return the
// products whose stock changed, so a cache can refresh them.
type Store interface {
	Get(ctx context.Context, id int64, o ReadOpts) (Product, Source, error)
	// GetMany returns the products that exist, in the order of ids.
	GetMany(ctx context.Context, ids []int64, o ReadOpts) ([]Product, Source, error)
	List(ctx context.Context, q ListQuery, o ReadOpts) (Page, Source, error)

	Create(ctx context.Context, in Input) (Product, LSN, error)
	// Update replaces the product; ifVersion > 0 makes it conditional
	// (problem.ErrPreconditionFailed when the stored version differs).
	Update(ctx context.Context, id int64, in Input, ifVersion int64) (Product, LSN, error)
	Delete(ctx context.Context, id int64, ifVersion int64) (LSN, error)

	// Reserve is all or nothing and idempotent by order id.
	Reserve(ctx context.Context, r ReservationRequest) (Reservation, []Product, error)
	// Release gives a reservation's stock back once; unknown ids are fine.
	Release(ctx context.Context, orderID string) (Reservation, []Product, error)
}
