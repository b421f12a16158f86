// Package orderstest has hand-written in-memory fakes of the orders
// domain's dependencies, for unit tests of the service, the HTTP API and the
// worker.
package orderstest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

type keyRef struct {
	hash string
	id   orders.ID
}

// Store keeps orders in memory with the real store's rules: the first
// writer of an Idempotency-Key wins, and Finalize applies only to a pending
// order.
type Store struct {
	mu     sync.Mutex
	orders map[orders.ID]*orders.Order
	keys   map[string]keyRef
	// Placed and Events count what was written.
	Placed int
	Events []orders.Event
}

var _ orders.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{orders: map[orders.ID]*orders.Order{}, keys: map[string]keyRef{}}
}

// Place implements orders.Store.
func (f *Store) Place(_ context.Context, p orders.Placement) (*orders.Order, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Key != "" {
		k := p.Order.CustomerID + "\x00" + p.Key
		if prev, ok := f.keys[k]; ok {
			if prev.hash != p.RequestHash {
				return nil, false, orders.ErrIdempotencyMismatch
			}
			c := *f.orders[prev.id]
			return &c, false, nil
		}
		f.keys[k] = keyRef{p.RequestHash, p.Order.ID}
	}
	o := p.Order
	f.orders[o.ID] = &o
	f.Placed++
	f.Events = append(f.Events, p.Event)
	c := o
	return &c, true, nil
}

// ByKey implements orders.Store.
func (f *Store) ByKey(_ context.Context, _ int, customer, key string) (*orders.Order, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, ok := f.keys[customer+"\x00"+key]
	if !ok {
		return nil, "", problem.ErrNotFound
	}
	c := *f.orders[prev.id]
	return &c, prev.hash, nil
}

// Get implements orders.Store.
func (f *Store) Get(_ context.Context, id orders.ID) (*orders.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.orders[id]; ok {
		c := *o
		return &c, nil
	}
	return nil, fmt.Errorf("order %s: %w", id, problem.ErrNotFound)
}

// ListCustomer implements orders.Store.
func (f *Store) ListCustomer(_ context.Context, _ int, customer string, after *orders.Cursor, limit int) ([]orders.Order, error) {
	return f.list(func(o *orders.Order) bool { return o.CustomerID == customer }, after, limit), nil
}

// ListAll implements orders.Store.
func (f *Store) ListAll(_ context.Context, after *orders.Cursor, limit int) ([]orders.Order, error) {
	return f.list(func(*orders.Order) bool { return true }, after, limit), nil
}

func (f *Store) list(keep func(*orders.Order) bool, after *orders.Cursor, limit int) []orders.Order {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []orders.Order
	for _, o := range f.orders {
		if keep(o) && (after == nil || orders.CursorOf(o).Compare(*after) < 0) {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(a, b orders.Order) int { return -orders.CursorOf(&a).Compare(orders.CursorOf(&b)) })
	return out[:min(limit, len(out))]
}

// Finalize moves a pending order to o's status, once.
func (f *Store) Finalize(_ context.Context, o *orders.Order) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.orders[o.ID]
	if !ok || cur.Final() {
		return false, nil // like the conditional UPDATE: an unknown id changes nothing
	}
	c := *o
	f.orders[o.ID] = &c
	f.Events = append(f.Events, orders.StatusEventOf(o))
	return true, nil
}

// Catalog is a fake catalog: prices, stock, idempotent reservations.
type Catalog struct {
	mu           sync.Mutex
	Items        map[int64]orders.Product
	Stock        map[int64]int
	reservations map[string]orders.ReservationStatus
	held         map[string][]orders.Line
	// Fail, when set, is returned by every call.
	Fail error
	// Reserves and Releases count the calls.
	Reserves, Releases int
}

var _ orders.Catalog = (*Catalog)(nil)

// NewCatalog prices products 1..n at 100*id cents in USD with stock each.
func NewCatalog(n, stock int) *Catalog {
	c := &Catalog{Items: map[int64]orders.Product{}, Stock: map[int64]int{},
		reservations: map[string]orders.ReservationStatus{}, held: map[string][]orders.Line{}}
	for id := int64(1); id <= int64(n); id++ {
		c.Items[id] = orders.Product{ID: id, PriceCents: 100 * id, Currency: "USD"}
		c.Stock[id] = stock
	}
	return c
}

// Products implements orders.Catalog.
func (c *Catalog) Products(_ context.Context, ids []int64) (map[int64]orders.Product, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Fail != nil {
		return nil, c.Fail
	}
	out := map[int64]orders.Product{}
	for _, id := range ids {
		if p, ok := c.Items[id]; ok {
			out[id] = p
		}
	}
	return out, nil
}

// Reserve implements orders.Catalog, idempotent by order id.
func (c *Catalog) Reserve(_ context.Context, orderID string, lines []orders.Line) (orders.ReservationStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Reserves++
	if c.Fail != nil {
		return "", c.Fail
	}
	if st, ok := c.reservations[orderID]; ok {
		return st, nil
	}
	for _, l := range lines {
		if c.Stock[l.ProductID] < l.Quantity {
			c.reservations[orderID] = orders.OutOfStock
			return orders.OutOfStock, nil
		}
	}
	for _, l := range lines {
		c.Stock[l.ProductID] -= l.Quantity
	}
	c.reservations[orderID] = orders.Reserved
	c.held[orderID] = lines
	return orders.Reserved, nil
}

// Release implements orders.Catalog, idempotent.
func (c *Catalog) Release(_ context.Context, orderID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Releases++
	if c.Fail != nil {
		return c.Fail
	}
	if c.reservations[orderID] == orders.Reserved {
		for _, l := range c.held[orderID] {
			c.Stock[l.ProductID] += l.Quantity
		}
		c.reservations[orderID] = orders.Released
	}
	return nil
}

// SetFail makes every later call fail with err (nil: answer again), safely
// while a worker is calling.
func (c *Catalog) SetFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Fail = err
}

// ReserveCalls is how many Reserve calls were made.
func (c *Catalog) ReserveCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Reserves
}

// StockOf returns a product's stock.
func (c *Catalog) StockOf(id int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Stock[id]
}

// Backlog is a fixed back-pressure verdict.
type Backlog bool

// Over implements orders.Backlog.
func (b Backlog) Over(int) bool { return bool(b) }

// Waiter is an orders.StatusWaiter the test wakes by hand.
type Waiter struct {
	mu   sync.Mutex
	subs map[orders.ID][]chan orders.StatusEvent
}

var _ orders.StatusWaiter = (*Waiter)(nil)

// Subscribe implements orders.StatusWaiter.
func (w *Waiter) Subscribe(id orders.ID) (<-chan orders.StatusEvent, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[orders.ID][]chan orders.StatusEvent{}
	}
	ch := make(chan orders.StatusEvent, 1)
	w.subs[id] = append(w.subs[id], ch)
	return ch, func() {}
}

// Subscribers counts the waiters of id.
func (w *Waiter) Subscribers(id orders.ID) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs[id])
}

// Notify wakes every waiter of id with ev (zero: "read it").
func (w *Waiter) Notify(id orders.ID, ev orders.StatusEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.subs[id] {
		select {
		case ch <- ev:
		default:
		}
	}
}
