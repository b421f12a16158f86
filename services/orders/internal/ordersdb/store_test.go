package ordersdb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

// newShards gives the test two logical shards of its own, one on each
// orders server, migrated as the services migrate them at start.
func newShards(t *testing.T) *shardmap.Shards {
	t.Helper()
	stack := stacktest.Require(t)
	dsns := []string{stack.Database(t, topology.PGOrdersA), stack.Database(t, topology.PGOrdersB)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shards, err := ordersdb.OpenShards(ctx, dsns, pgdb.Pool{MaxOpen: 8, MaxLifetime: time.Minute, MaxIdleTime: time.Minute}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shards.Close)
	return shards
}

// placement builds what orders.Service would write for customer.
func placement(t *testing.T, shards int, customer, key string, lines []orders.Line, at time.Time) orders.Placement {
	t.Helper()
	id, err := orders.NewID(orders.ShardOf(customer, shards))
	if err != nil {
		t.Fatal(err)
	}
	o := orders.Order{ID: id, CustomerID: customer, Status: orders.StatusPending, Currency: "USD",
		CreatedAt: at.UTC().Truncate(time.Microsecond), UpdatedAt: at.UTC().Truncate(time.Microsecond)}
	for _, l := range lines {
		o.Items = append(o.Items, orders.Item{ProductID: l.ProductID, Quantity: l.Quantity, PriceCents: 100})
		o.TotalCents += 100 * int64(l.Quantity)
	}
	return orders.Placement{Order: o, Key: key, RequestHash: orders.RequestHash(lines), Event: orders.PlacedEventOf(&o)}
}

func countRows(t *testing.T, shards *shardmap.Shards, shard int, query string, args ...any) int {
	t.Helper()
	var n int
	if err := shards.DB(shard).Raw(query, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

var twoBooks = []orders.Line{{ProductID: 1, Quantity: 2}}

func TestPlaceReplaysTheSameKey(t *testing.T) {
	shards := newShards(t)
	store := ordersdb.New(shards)
	ctx := context.Background()
	first := placement(t, shards.Len(), "alice", "key-1", twoBooks, time.Now())
	o, created, err := store.Place(ctx, first)
	if err != nil || !created {
		t.Fatalf("first place: created=%v err=%v", created, err)
	}
	// A retry makes a new order id; the key must return the first one.
	again := placement(t, shards.Len(), "alice", "key-1", twoBooks, time.Now())
	replay, created, err := store.Place(ctx, again)
	if err != nil || created {
		t.Fatalf("replay: created=%v err=%v", created, err)
	}
	if replay.ID != o.ID || replay.TotalCents != 200 || len(replay.Items) != 1 {
		t.Errorf("replay returned %+v, want the first order %s", replay, o.ID)
	}
	shard := o.ID.Shard
	if n := countRows(t, shards, shard, `SELECT count(*) FROM orders WHERE customer_id = 'alice'`); n != 1 {
		t.Errorf("%d orders after a replay, want 1", n)
	}
	if n := countRows(t, shards, shard, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("%d outbox rows after a replay, want 1 (one event per order)", n)
	}
}

func TestPlaceRefusesTheKeyWithAnotherBody(t *testing.T) {
	shards := newShards(t)
	store := ordersdb.New(shards)
	ctx := context.Background()
	if _, _, err := store.Place(ctx, placement(t, shards.Len(), "bob", "key-1", twoBooks, time.Now())); err != nil {
		t.Fatal(err)
	}
	other := placement(t, shards.Len(), "bob", "key-1", []orders.Line{{ProductID: 2, Quantity: 1}}, time.Now())
	if _, _, err := store.Place(ctx, other); !errors.Is(err, orders.ErrIdempotencyMismatch) {
		t.Fatalf("same key, other body: %v, want the idempotency mismatch (422)", err)
	}
	shard := other.Order.ID.Shard
	if n := countRows(t, shards, shard, `SELECT count(*) FROM orders`); n != 1 {
		t.Errorf("%d orders, want 1: the refused request wrote something", n)
	}
	if n := countRows(t, shards, shard, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("%d outbox rows, want 1", n)
	}
	// The key is the customer's own: another customer may use the same one.
	if _, created, err := store.Place(ctx, placement(t, shards.Len(), "carol", "key-1", twoBooks, time.Now())); err != nil || !created {
		t.Errorf("carol's key-1: created=%v err=%v", created, err)
	}
}

func TestConcurrentPlacesWithOneKeyMakeOneOrder(t *testing.T) {
	shards := newShards(t)
	store := ordersdb.New(shards)
	const n = 8
	results := make([]*orders.Order, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		p := placement(t, shards.Len(), "dave", "double-click", twoBooks, time.Now())
		wg.Go(func() {
			<-start
			o, created, err := store.Place(context.Background(), p)
			if err != nil {
				t.Errorf("place %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			results[i] = o
			if created {
				createdCount++
			}
		})
	}
	close(start)
	wg.Wait()
	if createdCount != 1 {
		t.Errorf("%d of %d concurrent places created an order, want exactly 1", createdCount, n)
	}
	for i, o := range results {
		if o != nil && results[0] != nil && o.ID != results[0].ID {
			t.Errorf("place %d returned order %s, place 0 returned %s: one key, two orders", i, o.ID, results[0].ID)
		}
	}
	shard := orders.ShardOf("dave", shards.Len())
	if got := countRows(t, shards, shard, `SELECT count(*) FROM orders`); got != 1 {
		t.Errorf("%d orders in the database, want 1", got)
	}
	if got := countRows(t, shards, shard, `SELECT count(*) FROM outbox`); got != 1 {
		t.Errorf("%d outbox rows, want 1", got)
	}
}

func TestFinalizeAppliesOnce(t *testing.T) {
	shards := newShards(t)
	store := ordersdb.New(shards)
	ctx := context.Background()
	o, _, err := store.Place(ctx, placement(t, shards.Len(), "erin", "", twoBooks, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	confirmed := *o
	confirmed.Status, confirmed.UpdatedAt = orders.StatusConfirmed, time.Now().UTC().Truncate(time.Microsecond)
	if applied, err := store.Finalize(ctx, &confirmed); err != nil || !applied {
		t.Fatalf("first finalize: applied=%v err=%v", applied, err)
	}
	// A redelivered message decides again, even differently: nothing changes.
	rejected := *o
	rejected.Status, rejected.Reason = orders.StatusRejected, orders.Reason("payment_declined")
	for _, again := range []*orders.Order{&confirmed, &rejected} {
		if applied, err := store.Finalize(ctx, again); err != nil || applied {
			t.Errorf("finalize %s again: applied=%v err=%v, want not applied", again.Status, applied, err)
		}
	}
	got, err := store.Get(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != orders.StatusConfirmed || got.Reason != "" {
		t.Errorf("order is %s (%q) after a second decision, want confirmed", got.Status, got.Reason)
	}
	// One orders.placed and one orders.status event: the repeat wrote none.
	if n := countRows(t, shards, o.ID.Shard, `SELECT count(*) FROM outbox WHERE topic = ?`, orders.StatusEventOf(&confirmed).Topic); n != 1 {
		t.Errorf("%d status events, want 1", n)
	}
}

// watchedOrder is an order placed on fresh shards, a watcher of those
// shards subscribed to it (decided), and run, which starts the watcher
// until the test ends.
type watchedOrder struct {
	shards  *shardmap.Shards
	store   *ordersdb.Store
	order   *orders.Order
	decided <-chan orders.StatusEvent
	run     func()
}

func watchOrder(t *testing.T, customer string) watchedOrder {
	t.Helper()
	wo := watchedOrder{shards: newShards(t)}
	wo.store = ordersdb.New(wo.shards)
	o, _, err := wo.store.Place(context.Background(), placement(t, wo.shards.Len(), customer, "", twoBooks, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	wo.order = o
	dbs := make([]*sql.DB, wo.shards.Len())
	for i := range dbs {
		if dbs[i], err = wo.shards.DB(i).DB(); err != nil {
			t.Fatal(err)
		}
	}
	w := ordersdb.NewWatcher(dbs, slog.New(slog.DiscardHandler))
	decided, unsubscribe := w.Subscribe(o.ID)
	t.Cleanup(unsubscribe)
	wo.decided = decided
	wo.run = func() {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			_ = w.Run(ctx)
		}()
		t.Cleanup(func() { cancel(); <-stopped })
	}
	return wo
}

// TestLongPollsLearnTheDecisionFromTheNotification: the finalizing
// statement's notification carries the order's status event, so a long
// poll woken by it answers without reading the order again.
func TestLongPollsLearnTheDecisionFromTheNotification(t *testing.T) {
	ctx := context.Background()
	wo := watchOrder(t, "frank")
	shards, store, o, decided := wo.shards, wo.store, wo.order, wo.decided
	wo.run()
	// A notification sent before the watcher listens reaches nobody.
	for deadline := time.Now().Add(30 * time.Second); countRows(t, shards, o.ID.Shard,
		`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = ?`, "LISTEN "+ordersdb.StatusChannel) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never listened on the order's shard")
		}
		time.Sleep(10 * time.Millisecond)
	}
	confirmed := *o
	confirmed.Status, confirmed.UpdatedAt = orders.StatusConfirmed, time.Now().UTC().Truncate(time.Microsecond)
	if applied, err := store.Finalize(ctx, &confirmed); err != nil || !applied {
		t.Fatalf("finalize: applied=%v err=%v", applied, err)
	}
	// The session's start woke the waiter once to read (a long poll would
	// have, and found it pending); the decision's wake-up comes after.
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-decided:
			if ev == (orders.StatusEvent{}) {
				continue
			}
			if ev.OrderID != o.ID.String() || ev.Status != orders.StatusConfirmed || !ev.UpdatedAt.Equal(confirmed.UpdatedAt) {
				t.Fatalf("woken with %+v; want %s confirmed at %s", ev, o.ID, confirmed.UpdatedAt)
			}
			return
		case <-timeout:
			t.Fatal("no wake-up with the decision within 30 s of it")
		}
	}
}

// TestWatcherWakesItsShardsWaitersWhenItStartsListening: a decision made
// while no session listened (before the first, or between a lost session
// and the next) sent its notification to nobody, so a session that starts
// listening wakes every waiter of its shard to read its order. Long polls
// reread only every orders.WatchedReread otherwise.
func TestWatcherWakesItsShardsWaitersWhenItStartsListening(t *testing.T) {
	wo := watchOrder(t, "gail")
	confirmed := *wo.order
	confirmed.Status, confirmed.UpdatedAt = orders.StatusConfirmed, time.Now().UTC()
	if applied, err := wo.store.Finalize(context.Background(), &confirmed); err != nil || !applied {
		t.Fatalf("finalize: applied=%v err=%v", applied, err)
	}
	wo.run()
	select {
	case ev := <-wo.decided:
		if ev != (orders.StatusEvent{}) {
			t.Fatalf("woken with %+v; want the bare wake-up that says read the order", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the decision made before the watcher listened never woke its waiter")
	}
}

func TestListingPagesThroughEveryOrderOnce(t *testing.T) {
	shards := newShards(t)
	store := ordersdb.New(shards)
	ctx := context.Background()
	// Several orders share a created_at, and customers land on both shards:
	// the keyset (created_at, shard, id) must still order them totally.
	base := time.Now().Add(-time.Hour)
	customers := []string{"fay", "gus", "hal", "ivy"}
	want := map[orders.ID]string{}
	for i := range 14 {
		customer := customers[i%len(customers)]
		at := base.Add(time.Duration(i/3) * time.Second)
		o, _, err := store.Place(ctx, placement(t, shards.Len(), customer, "", twoBooks, at))
		if err != nil {
			t.Fatal(err)
		}
		want[o.ID] = customer
	}
	used := map[int]bool{}
	for _, c := range customers {
		used[orders.ShardOf(c, shards.Len())] = true
	}
	if len(used) < 2 {
		t.Fatal("the customers all map to one shard; the merge across shards is not tested")
	}

	for _, limit := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("all, limit ", limit), func(t *testing.T) {
			seen := pageThrough(t, limit, func(c *orders.Cursor) ([]orders.Order, error) { return store.ListAll(ctx, c, limit) })
			if len(seen) != len(want) {
				t.Errorf("listed %d orders over the pages, want %d", len(seen), len(want))
			}
		})
		t.Run(fmt.Sprint("one customer, limit ", limit), func(t *testing.T) {
			shard := orders.ShardOf("fay", shards.Len())
			seen := pageThrough(t, limit, func(c *orders.Cursor) ([]orders.Order, error) {
				return store.ListCustomer(ctx, shard, "fay", c, limit)
			})
			n := 0
			for id := range want {
				if want[id] == "fay" {
					n++
					if !seen[id] {
						t.Errorf("fay's order %s is on no page", id)
					}
				}
			}
			if len(seen) != n {
				t.Errorf("fay's pages hold %d orders, she has %d", len(seen), n)
			}
		})
	}
}

// pageThrough follows cursors to the end, checking every page is newest
// first and that no order shows up twice.
func pageThrough(t *testing.T, limit int, page func(*orders.Cursor) ([]orders.Order, error)) map[orders.ID]bool {
	t.Helper()
	seen := map[orders.ID]bool{}
	var cursor *orders.Cursor
	var last *orders.Order
	for range 100 {
		items, err := page(cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > limit {
			t.Fatalf("a page of %d orders, limit %d", len(items), limit)
		}
		for i := range items {
			o := items[i]
			if seen[o.ID] {
				t.Fatalf("order %s is on two pages", o.ID)
			}
			seen[o.ID] = true
			if last != nil && o.CreatedAt.After(last.CreatedAt) {
				t.Fatalf("order %s (%s) comes after the newer %s (%s)", o.ID, o.CreatedAt, last.ID, last.CreatedAt)
			}
			last = &items[i]
		}
		if len(items) < limit {
			return seen
		}
		cursor = &orders.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	t.Fatal("more than 100 pages")
	return nil
}
