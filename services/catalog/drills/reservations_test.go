package drills

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

func reserve(t *testing.T, base, orderID string, productID, qty int64) catalog.Reservation {
	t.Helper()
	r := call(t, "POST", base+"/internal/reservations",
		fmt.Sprintf(`{"order_id":%q,"items":[{"product_id":%d,"quantity":%d}]}`, orderID, productID, qty))
	var res catalog.Reservation
	if r.status != 200 || json.Unmarshal(r.body, &res) != nil {
		t.Errorf("reserve %s = %d: %s", orderID, r.status, r.body)
	}
	return res
}

func TestConcurrentReservationsOfTheLastUnitOneWins(t *testing.T) {
	stack := stacktest.Require(t)
	urls := stack.Endpoints.CatalogURLs
	p, _ := newProduct(t, urls[0], 1)
	primary := db(t, stack, topology.PGCatalogPrimary)

	run := rand.Int64()
	results := make([]catalog.Reservation, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Both clones race, as two workers would.
			results[i] = reserve(t, urls[i%len(urls)], fmt.Sprintf("last-unit-%d-%d", run, i), p.ID, 1)
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		switch r.Status {
		case catalog.StatusReserved:
			won++
		case catalog.StatusOutOfStock:
		default:
			t.Errorf("unexpected status %q", r.Status)
		}
	}
	if won != 1 {
		t.Errorf("%d reservations of the last unit won, want exactly 1", won)
	}
	if s := stockOnPrimary(t, primary, p.ID); s != 0 {
		t.Errorf("stock after the race = %d, want 0", s)
	}
}

func TestDuplicateReservationsReserveOnceAndReleaseOnce(t *testing.T) {
	stack := stacktest.Require(t)
	urls := stack.Endpoints.CatalogURLs
	p, _ := newProduct(t, urls[0], 5)
	primary := db(t, stack, topology.PGCatalogPrimary)
	orderID := fmt.Sprintf("dup-%d", rand.Int64())

	results := make([]catalog.Reservation, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = reserve(t, urls[i%len(urls)], orderID, p.ID, 2)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.Status != catalog.StatusReserved || len(r.Items) != 1 || r.Items[0].Quantity != 2 {
			t.Errorf("a duplicate answered %+v, want the stored reservation", r)
		}
	}
	if s := stockOnPrimary(t, primary, p.ID); s != 3 {
		t.Errorf("stock after 10 copies of one reservation of 2 = %d, want 3", s)
	}

	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, "DELETE", urls[i%len(urls)]+"/internal/reservations/"+orderID, "")
			if r.status != 200 {
				t.Errorf("release = %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if s := stockOnPrimary(t, primary, p.ID); s != 5 {
		t.Errorf("stock after 4 releases = %d, want 5 (given back once)", s)
	}
	if again := reserve(t, urls[0], orderID, p.ID, 2); again.Status != catalog.StatusReleased {
		t.Errorf("reserving a released order again = %q, want the stored %q", again.Status, catalog.StatusReleased)
	}
	if s := stockOnPrimary(t, primary, p.ID); s != 5 {
		t.Errorf("stock after re-reserving a released order = %d, want 5", s)
	}
	if r := call(t, "DELETE", urls[0]+"/internal/reservations/never-reserved-"+orderID, ""); r.status != 200 {
		t.Errorf("release of an unknown order = %d", r.status)
	}
}
