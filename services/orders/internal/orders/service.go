package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// Product is what the orders service needs to know of a catalog product.
type Product struct {
	ID         int64  `json:"id"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

// ReservationStatus is the catalog's answer to a stock reservation.
type ReservationStatus string

// The reservation outcomes.
const (
	Reserved   ReservationStatus = "reserved"
	OutOfStock ReservationStatus = "out_of_stock"
	// Released: this order's reservation was made and given back before;
	// only a declined payment does that, so a redelivery lands here.
	Released ReservationStatus = "released"
)

// ErrCatalogRefused is a catalog answer no retry changes (a 4xx to a request
// the orders service built, or a body it cannot read): a contract breach,
// a 500 for a client, a dead letter for a worker.
var ErrCatalogRefused = errors.New("the catalog refused the request")

// Catalog is the part of the catalog's internal API orders use. Every call
// is idempotent (reservations by order id), so a client may retry them.
type Catalog interface {
	Products(ctx context.Context, ids []int64) (map[int64]Product, error)
	Reserve(ctx context.Context, orderID string, lines []Line) (ReservationStatus, error)
	Release(ctx context.Context, orderID string) error
}

// Event is a message bound for Kafka, written to the outbox in the same
// transaction as the change it announces.
type Event struct {
	Topic   string
	Key     string // the customer id: one customer's events stay in order on one partition
	Payload []byte
}

// PlacedEvent is the orders.placed payload.
type PlacedEvent struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Items      []Item    `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	CreatedAt  time.Time `json:"created_at"`
}

// Order is the pending order the event was written for: an order changes
// nothing but its status after placement, so the event carries all of it.
func (ev *PlacedEvent) Order(shards int) (*Order, error) {
	id, err := ParseID(ev.OrderID, shards)
	if err != nil {
		return nil, err
	}
	if ev.CustomerID == "" || len(ev.Items) == 0 {
		return nil, fmt.Errorf("orders.placed event of %s without its customer or items", ev.OrderID)
	}
	return &Order{ID: id, CustomerID: ev.CustomerID, Status: StatusPending, Items: ev.Items,
		TotalCents: ev.TotalCents, Currency: ev.Currency, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}, nil
}

// StatusEvent is the orders.status payload: an order reached a final status.
type StatusEvent struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Status     Status    `json:"status"`
	Reason     Reason    `json:"reason,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	CreatedAt  time.Time `json:"created_at"`
}

// PlacedEventOf builds o's orders.placed event.
func PlacedEventOf(o *Order) Event {
	b, _ := json.Marshal(PlacedEvent{
		OrderID: o.ID.String(), CustomerID: o.CustomerID, Items: o.Items,
		TotalCents: o.TotalCents, Currency: o.Currency, CreatedAt: o.CreatedAt,
	})
	return Event{Topic: topology.TopicOrdersPlaced, Key: o.CustomerID, Payload: b}
}

// StatusEventOf builds the orders.status event for o's final status.
func StatusEventOf(o *Order) Event {
	b, _ := json.Marshal(StatusEvent{
		OrderID: o.ID.String(), CustomerID: o.CustomerID, Status: o.Status, Reason: o.Reason,
		UpdatedAt: o.UpdatedAt, CreatedAt: o.CreatedAt,
	})
	return Event{Topic: topology.TopicOrdersStatus, Key: o.CustomerID, Payload: b}
}

// Placement is everything one placement transaction writes.
type Placement struct {
	Order       Order
	Key         string // Idempotency-Key, "" for none
	RequestHash string
	Event       Event
}

// Store keeps orders on their logical shards.
type Store interface {
	// Place writes the order, its items, the idempotency record and the
	// outbox event in one transaction. When the key was taken meanwhile (a
	// racing request), it returns the order that owns the key and
	// created=false, or ErrIdempotencyMismatch when that one had another body.
	Place(ctx context.Context, p Placement) (o *Order, created bool, err error)
	// ByKey returns the order an idempotency key points to and the request
	// hash it was placed with; problem.ErrNotFound when the key is unused.
	ByKey(ctx context.Context, shard int, customerID, key string) (*Order, string, error)
	Get(ctx context.Context, id ID) (*Order, error)
	ListCustomer(ctx context.Context, shard int, customerID string, after *Cursor, limit int) ([]Order, error)
	ListAll(ctx context.Context, after *Cursor, limit int) ([]Order, error)
}

// StatusWaiter wakes a long poll when its order may have become final. A
// wake-up carries the decision when the notification brought it, so the
// poll answers without reading the order again; a zero StatusEvent only
// says "read it".
type StatusWaiter interface {
	Subscribe(id ID) (decided <-chan StatusEvent, cancel func())
}

// Backlog tells whether a shard's outbox is over its bound.
type Backlog interface {
	Over(shard int) bool
}

// Service places and reads orders.
type Service struct {
	store   Store
	catalog Catalog
	backlog Backlog
	waiter  StatusWaiter
	shards  int
	now     func() time.Time
}

// WithWaiter makes long polls wait for status notifications, reading the
// order only when woken (or every fallback interval), instead of polling.
func (s *Service) WithWaiter(w StatusWaiter) *Service {
	s.waiter = w
	return s
}

// NewService wires the service.
func NewService(store Store, catalog Catalog, backlog Backlog, shards int) *Service {
	return &Service{store: store, catalog: catalog, backlog: backlog, shards: shards, now: time.Now}
}

// Shards is the number of logical shards.
func (s *Service) Shards() int { return s.shards }

// Place accepts an order for who: validated, priced through the catalog and
// written with its outbox event on the customer's shard. created is false
// when an Idempotency-Key replay returned the order it first made.
func (s *Service) Place(ctx context.Context, who Identity, key string, lines []Line) (*Order, bool, error) {
	if err := Validate(lines); err != nil {
		return nil, false, err
	}
	if err := ValidateKey(key); err != nil {
		return nil, false, err
	}
	shard := ShardOf(who.CustomerID, s.shards)
	hash := RequestHash(lines)
	if key != "" {
		prev, prevHash, err := s.store.ByKey(ctx, shard, who.CustomerID, key)
		switch {
		case err == nil && prevHash == hash:
			return prev, false, nil
		case err == nil:
			return nil, false, ErrIdempotencyMismatch
		case !isNotFound(err):
			return nil, false, err
		}
	}
	if s.backlog != nil && s.backlog.Over(shard) {
		return nil, false, problem.RetryAfter(fmt.Errorf("shard %d: %w: %w", shard, ErrBacklog, problem.ErrUnavailable), 2)
	}
	ids := make([]int64, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	products, err := s.catalog.Products(ctx, ids)
	if err != nil {
		return nil, false, fmt.Errorf("price items: %w", err)
	}
	o, err := s.newOrder(who.CustomerID, shard, lines, products)
	if err != nil {
		return nil, false, err
	}
	return s.store.Place(ctx, Placement{Order: *o, Key: key, RequestHash: hash, Event: PlacedEventOf(o)})
}

func (s *Service) newOrder(customer string, shard int, lines []Line, products map[int64]Product) (*Order, error) {
	id, err := NewID(shard)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	o := &Order{ID: id, CustomerID: customer, Status: StatusPending, CreatedAt: now, UpdatedAt: now}
	v := &problem.ValidationError{}
	for i, l := range lines {
		p, ok := products[l.ProductID]
		if !ok {
			v.Add(fmt.Sprintf("items[%d].product_id", i), "no such product")
			continue
		}
		if o.Currency == "" {
			o.Currency = p.Currency
		} else if p.Currency != o.Currency {
			v.Add(fmt.Sprintf("items[%d].product_id", i), "priced in "+p.Currency+"; one order has one currency")
		}
		o.Items = append(o.Items, Item{ProductID: l.ProductID, Quantity: l.Quantity, PriceCents: p.PriceCents})
		o.TotalCents += p.PriceCents * int64(l.Quantity)
	}
	if err := v.OrNil(); err != nil {
		return nil, err
	}
	return o, nil
}

// Get returns the order id names when who may read it; any other case,
// including a malformed id, is problem.ErrNotFound.
func (s *Service) Get(ctx context.Context, who Identity, rawID string) (*Order, error) {
	id, err := ParseID(rawID, s.shards)
	if err != nil {
		return nil, err
	}
	o, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !who.CanRead(o) {
		return nil, fmt.Errorf("order %s: %w", rawID, problem.ErrNotFound)
	}
	return o, nil
}

// WatchedReread is how often a long poll with a StatusWaiter reads its
// order unwoken. The waiter wakes it for every decision and after every
// gap in its watch, so this is only a safety net. It was every 250 ms,
// like unwatched polling: when the pipeline fell behind (at 300 orders/s,
// a second from accept to final), those re-reads were 4 of every 5 order
// reads, and the orders API spent 39 % of its CPU reading orders, taking
// cores from the pipeline it waited on.
const WatchedReread = 2 * time.Second

// Wait is Get that, for up to wait, waits until the order leaves pending:
// woken by the StatusWaiter when there is one (rereading only every
// WatchedReread unwoken), else reading it every interval.
func (s *Service) Wait(ctx context.Context, who Identity, rawID string, wait, every time.Duration) (*Order, error) {
	if wait <= 0 {
		return s.Get(ctx, who, rawID)
	}
	var woken <-chan StatusEvent
	if s.waiter != nil {
		if id, err := ParseID(rawID, s.shards); err == nil {
			var cancel func()
			// Subscribe before the first read, so a decision between the
			// two is not missed.
			woken, cancel = s.waiter.Subscribe(id)
			defer cancel()
			every = max(every, WatchedReread)
		}
	}
	o, err := s.Get(ctx, who, rawID)
	if err != nil || o.Final() {
		return o, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return o, nil // still pending: answer what is known, not an error
		case ev := <-woken:
			if ev.Status != "" && ev.Status != StatusPending {
				// The decision is all that changes: one read fewer per
				// order, on the shard and here.
				o.Status, o.Reason, o.UpdatedAt = ev.Status, ev.Reason, ev.UpdatedAt
				return o, nil
			}
		case <-t.C:
		}
		next, err := s.store.Get(ctx, o.ID)
		if err != nil {
			if ctx.Err() != nil {
				return o, nil
			}
			return nil, err
		}
		if o = next; o.Final() {
			return o, nil
		}
	}
}

// MaxPage bounds one page of a listing.
const MaxPage = 100

// List returns a page of who's own orders, newest first.
func (s *Service) List(ctx context.Context, who Identity, after *Cursor, limit int) ([]Order, *Cursor, error) {
	limit = clampLimit(limit)
	rows, err := s.store.ListCustomer(ctx, ShardOf(who.CustomerID, s.shards), who.CustomerID, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	return page(rows, limit)
}

// ListAll is the admin listing across every shard, merged newest first.
func (s *Service) ListAll(ctx context.Context, who Identity, after *Cursor, limit int) ([]Order, *Cursor, error) {
	if !who.Admin {
		return nil, nil, fmt.Errorf("listing every customer's orders needs the admin role: %w", problem.ErrForbidden)
	}
	limit = clampLimit(limit)
	rows, err := s.store.ListAll(ctx, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	return page(rows, limit)
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return 20
	}
	return min(limit, MaxPage)
}

func page(rows []Order, limit int) ([]Order, *Cursor, error) {
	if len(rows) <= limit {
		return rows, nil, nil
	}
	rows = rows[:limit]
	last := rows[limit-1]
	return rows, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}

// MergeNewestFirst merges per-shard pages (each already newest first) and
// keeps the first limit: the scatter-gather step of the admin listing.
func MergeNewestFirst(pages [][]Order, limit int) []Order {
	var all []Order
	for _, p := range pages {
		all = append(all, p...)
	}
	slices.SortFunc(all, func(a, b Order) int { return -CursorOf(&a).Compare(CursorOf(&b)) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

func isNotFound(err error) bool { return problem.Status(err) == 404 }
