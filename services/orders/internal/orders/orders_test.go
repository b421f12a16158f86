package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
	. "github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

func TestValidate(t *testing.T) {
	many := make([]Line, MaxLines+1)
	for i := range many {
		many[i] = Line{ProductID: int64(i + 1), Quantity: 1}
	}
	for _, tc := range []struct {
		name  string
		lines []Line
		field string // "" means valid
	}{
		{"one line", []Line{{1, 1}}, ""},
		{"max quantity", []Line{{1, MaxQuantity}}, ""},
		{"fifty lines", many[:MaxLines], ""},
		{"no lines", nil, "items"},
		{"51 lines", many, "items"},
		{"zero quantity", []Line{{1, 0}}, "items[0].quantity"},
		{"too many", []Line{{1, MaxQuantity + 1}}, "items[0].quantity"},
		{"bad product", []Line{{0, 1}}, "items[0].product_id"},
		{"duplicate product", []Line{{1, 1}, {1, 2}}, "items[1].product_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.lines)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			var v *problem.ValidationError
			if !errors.As(err, &v) || v.Fields[0].Field != tc.field {
				t.Fatalf("Validate = %v, want a field error on %s", err, tc.field)
			}
			if problem.Status(err) != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", problem.Status(err))
			}
		})
	}
}

func TestRequestHashIgnoresLineOrderButNotContent(t *testing.T) {
	a := RequestHash([]Line{{1, 2}, {3, 4}})
	if b := RequestHash([]Line{{3, 4}, {1, 2}}); a != b {
		t.Fatal("same lines in another order hash differently")
	}
	for _, other := range [][]Line{{{1, 2}}, {{1, 3}, {3, 4}}, {{1, 2}, {3, 4}, {5, 1}}, {{12, 3}, {4, 0}}} {
		if RequestHash(other) == a {
			t.Fatalf("%v hashes like the original", other)
		}
	}
}

func TestPaymentRule(t *testing.T) {
	for customer, approved := range map[string]bool{
		"alice": true, "decline": false, "decline-42": false, "declined-bob": false, "x-decline": true,
	} {
		if got := PaymentApproved(&Order{CustomerID: customer}); got != approved {
			t.Errorf("PaymentApproved(%q) = %v, want %v", customer, got, approved)
		}
	}
}

func TestCursorRoundTripAndOrder(t *testing.T) {
	a, _ := NewID(2)
	c := Cursor{CreatedAt: time.Now().UTC().Truncate(time.Microsecond), ID: a}
	back, err := ParseCursor(c.Encode(), 8)
	if err != nil || back.Compare(c) != 0 || !back.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("cursor round trip: %+v, %v; want %+v", back, err, c)
	}
	if _, err := ParseCursor("not-a-cursor", 8); problem.Status(err) != http.StatusBadRequest {
		t.Fatalf("a bad cursor gives %v, want 400", err)
	}
	later := Cursor{CreatedAt: c.CreatedAt.Add(time.Microsecond), ID: a}
	sameTimeHigherShard := Cursor{CreatedAt: c.CreatedAt, ID: ID{Shard: 3, UUID: a.UUID}}
	if c.Compare(later) >= 0 || c.Compare(sameTimeHigherShard) >= 0 || later.Compare(c) <= 0 {
		t.Fatal("cursor order is not (created_at, shard, uuid)")
	}
}

func TestMergeNewestFirst(t *testing.T) {
	at := func(shard, sec int) Order {
		id, _ := NewID(shard)
		return Order{ID: id, CreatedAt: time.Unix(int64(sec), 0)}
	}
	pages := [][]Order{{at(0, 9), at(0, 5)}, {at(1, 8), at(1, 7), at(1, 1)}, {}, {at(3, 6)}}
	got := MergeNewestFirst(pages, 4)
	var secs []int64
	for _, o := range got {
		secs = append(secs, o.CreatedAt.Unix())
	}
	if fmt.Sprint(secs) != "[9 8 7 6]" {
		t.Fatalf("merged %v, want [9 8 7 6]", secs)
	}
}

var catalog = func() *orderstest.Catalog {
	c := orderstest.NewCatalog(0, 0)
	c.Items[1] = Product{ID: 1, PriceCents: 250, Currency: "USD"}
	c.Items[2] = Product{ID: 2, PriceCents: 1000, Currency: "USD"}
	c.Items[3] = Product{ID: 3, PriceCents: 5, Currency: "EUR"}
	return c
}()

func TestPlacePricesAndShards(t *testing.T) {
	svc := NewService(orderstest.NewStore(), catalog, orderstest.Backlog(false), 8)
	o, created, err := svc.Place(context.Background(), Identity{CustomerID: "alice"}, "", []Line{{1, 2}, {2, 1}})
	if err != nil || !created {
		t.Fatalf("Place = %v, %v", created, err)
	}
	if o.TotalCents != 1500 || o.Currency != "USD" || o.Status != StatusPending || o.ID.Shard != ShardOf("alice", 8) {
		t.Fatalf("placed %+v", o)
	}
	if _, _, err := svc.Place(context.Background(), Identity{CustomerID: "alice"}, "", []Line{{9, 1}}); problem.Status(err) != 400 {
		t.Fatalf("unknown product: %v, want 400", err)
	}
	if _, _, err := svc.Place(context.Background(), Identity{CustomerID: "alice"}, "", []Line{{1, 1}, {3, 1}}); problem.Status(err) != 400 {
		t.Fatalf("mixed currencies: %v, want 400", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	store := orderstest.NewStore()
	svc := NewService(store, catalog, orderstest.Backlog(false), 8)
	ctx := context.Background()
	alice := Identity{CustomerID: "alice"}
	first, created, err := svc.Place(ctx, alice, "k1", []Line{{1, 1}, {2, 1}})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	// Same key, same body (lines reordered): the same order, not created.
	again, created, err := svc.Place(ctx, alice, "k1", []Line{{2, 1}, {1, 1}})
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("replay = %v %v %v, want order %s", again, created, err, first.ID)
	}
	// Same key, another body: 422.
	if _, _, err := svc.Place(ctx, alice, "k1", []Line{{1, 5}}); problem.Status(err) != http.StatusUnprocessableEntity {
		t.Fatalf("reuse with another body: %v, want 422", err)
	}
	// Keys are per customer: bob's k1 is a new order.
	bobs, created, err := svc.Place(ctx, Identity{CustomerID: "bob"}, "k1", []Line{{1, 1}, {2, 1}})
	if err != nil || !created || bobs.ID == first.ID {
		t.Fatalf("another customer's key: %v %v %v", bobs, created, err)
	}
	// A replay is answered even when the shard refuses new orders.
	svc = NewService(store, catalog, orderstest.Backlog(true), 8)
	if again, _, err := svc.Place(ctx, alice, "k1", []Line{{1, 1}, {2, 1}}); err != nil || again.ID != first.ID {
		t.Fatalf("replay under back pressure: %v %v", again, err)
	}
	if store.Placed != 2 {
		t.Fatalf("%d orders written, want 2", store.Placed)
	}
}

func TestIdempotencyKeyRace(t *testing.T) {
	store := orderstest.NewStore()
	svc := NewService(store, catalog, orderstest.Backlog(false), 8)
	var wg sync.WaitGroup
	ids := make([]ID, 16)
	for i := range ids {
		wg.Go(func() {
			o, _, err := svc.Place(context.Background(), Identity{CustomerID: "carol"}, "race", []Line{{1, 1}})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = o.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing requests got different orders: %v", ids)
		}
	}
	if store.Placed != 1 {
		t.Fatalf("%d orders written, want 1", store.Placed)
	}
}

func TestBackPressureRefusesWith503AndRetryAfter(t *testing.T) {
	svc := NewService(orderstest.NewStore(), catalog, orderstest.Backlog(true), 8)
	_, _, err := svc.Place(context.Background(), Identity{CustomerID: "alice"}, "", []Line{{1, 1}})
	d := problem.From(err)
	if d.Status != http.StatusServiceUnavailable || d.RetryAfter <= 0 {
		t.Fatalf("over the backlog bound: %+v, want 503 with Retry-After", d)
	}
}

func TestGetHidesOtherCustomersOrders(t *testing.T) {
	svc := NewService(orderstest.NewStore(), catalog, orderstest.Backlog(false), 8)
	ctx := context.Background()
	o, _, err := svc.Place(ctx, Identity{CustomerID: "alice"}, "", []Line{{1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, Identity{CustomerID: "alice"}, o.ID.String()); err != nil {
		t.Fatalf("owner: %v", err)
	}
	if _, err := svc.Get(ctx, Identity{CustomerID: "root", Admin: true}, o.ID.String()); err != nil {
		t.Fatalf("admin: %v", err)
	}
	for _, tc := range []struct {
		who Identity
		id  string
	}{
		{Identity{CustomerID: "mallory"}, o.ID.String()},
		{Identity{CustomerID: "alice"}, "garbage"},
	} {
		if _, err := svc.Get(ctx, tc.who, tc.id); problem.Status(err) != http.StatusNotFound {
			t.Errorf("Get(%s as %s) = %v, want 404", tc.id, tc.who.CustomerID, err)
		}
	}
}

// TestWaitIsWokenByTheStatusWaiter: a wake-up without the decision makes
// the long poll read the order; one with it (what the database's
// notification brings) answers from it, with the store still saying
// pending. The fallback re-read is an hour away: only the wake-up can end
// either wait.
func TestWaitIsWokenByTheStatusWaiter(t *testing.T) {
	decided := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	for _, withDecision := range []bool{false, true} {
		store, waiter := orderstest.NewStore(), &orderstest.Waiter{}
		svc := NewService(store, catalog, orderstest.Backlog(false), 8).WithWaiter(waiter)
		ctx := context.Background()
		alice := Identity{CustomerID: "alice"}
		o, _, err := svc.Place(ctx, alice, "", []Line{{1, 1}})
		if err != nil {
			t.Fatal(err)
		}
		final := *o
		final.Status, final.Reason, final.UpdatedAt = StatusRejected, ReasonPaymentDeclined, decided
		var ev StatusEvent
		if withDecision {
			if err := json.Unmarshal(StatusEventOf(&final).Payload, &ev); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			for waiter.Subscribers(o.ID) == 0 {
				time.Sleep(time.Millisecond)
			}
			if !withDecision {
				_, _ = store.Finalize(ctx, &final) // decided after the wait's first read
			}
			waiter.Notify(o.ID, ev)
		}()
		got, err := svc.Wait(ctx, alice, o.ID.String(), 5*time.Second, time.Hour)
		if err != nil || got.Status != StatusRejected || got.Reason != ReasonPaymentDeclined || !got.UpdatedAt.Equal(decided) || len(got.Items) != 1 {
			t.Fatalf("woken with the decision %v: Wait = %+v, %v; want the placed order, rejected for payment at %s", withDecision, got, err, decided)
		}
	}
}
