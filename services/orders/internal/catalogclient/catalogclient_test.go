package catalogclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// fakeCatalog serves the catalog's internal API contract from memory.
type fakeCatalog struct {
	mu           sync.Mutex
	stock        map[int64]int
	reservations map[string]string
	calls        atomic.Int64
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{stock: map[int64]int{1: 5, 2: 0}, reservations: map[string]string{}}
}

func (f *fakeCatalog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/internal/products":
		var items []map[string]any
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		if len(ids) > 100 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, raw := range ids {
			id, _ := strconv.ParseInt(raw, 10, 64)
			if st, ok := f.stock[id]; ok {
				items = append(items, map[string]any{"id": id, "sku": "S", "name": "n", "price_cents": 100 * id, "currency": "USD", "stock": st})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
	case r.Method == http.MethodPost && r.URL.Path == "/internal/reservations":
		var req struct {
			OrderID string        `json:"order_id"`
			Items   []orders.Line `json:"items"`
			Extra   any           `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.OrderID == "" || req.Extra != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		st, ok := f.reservations[req.OrderID]
		if !ok {
			st = "reserved"
			for _, it := range req.Items {
				if f.stock[it.ProductID] < it.Quantity {
					st = "out_of_stock"
				}
			}
			if st == "reserved" {
				for _, it := range req.Items {
					f.stock[it.ProductID] -= it.Quantity
				}
			}
			f.reservations[req.OrderID] = st
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"order_id": req.OrderID, "status": st, "items": req.Items})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/internal/reservations/"):
		id := strings.TrimPrefix(r.URL.Path, "/internal/reservations/")
		f.reservations[id] = "released"
		_ = json.NewEncoder(w).Encode(map[string]any{"order_id": id, "status": "released"})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func newClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	b, err := NewPoolBackends(urls)
	if err != nil {
		t.Fatal(err)
	}
	return New(b, NewTransport(8), time.Second)
}

func TestContract(t *testing.T) {
	srv := httptest.NewServer(newFakeCatalog())
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx := context.Background()

	ids := make([]int64, 150) // more than one request's worth
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	ps, err := c.Products(ctx, ids)
	if err != nil || len(ps) != 2 || ps[1].PriceCents != 100 || ps[1].Currency != "USD" {
		t.Fatalf("Products = %v, %v", ps, err)
	}
	st, err := c.Reserve(ctx, "3-x", []orders.Line{{ProductID: 1, Quantity: 2}})
	if err != nil || st != orders.Reserved {
		t.Fatalf("Reserve = %q, %v", st, err)
	}
	if st, _ := c.Reserve(ctx, "3-x", []orders.Line{{ProductID: 1, Quantity: 2}}); st != orders.Reserved {
		t.Fatalf("repeated Reserve = %q, want the stored outcome", st)
	}
	if st, _ := c.Reserve(ctx, "3-y", []orders.Line{{ProductID: 2, Quantity: 1}}); st != orders.OutOfStock {
		t.Fatalf("Reserve of an empty product = %q", st)
	}
	if err := c.Release(ctx, "3-x"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Reserve(ctx, "3-x", nil); st != orders.Released {
		t.Fatalf("Reserve after release = %q, want released", st)
	}
}

func TestFailedCloneIsRetriedOnAnother(t *testing.T) {
	good := newFakeCatalog()
	goodSrv := httptest.NewServer(good)
	defer goodSrv.Close()
	var broken atomic.Int64
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		broken.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer badSrv.Close()
	c := newClient(t, badSrv.URL, goodSrv.URL)
	for i := range 20 {
		if _, err := c.Reserve(context.Background(), "o-"+strconv.Itoa(i), []orders.Line{{ProductID: 1, Quantity: 0}}); err != nil {
			t.Fatalf("call %d failed although one clone works: %v", i, err)
		}
	}
	if good.calls.Load() != 20 {
		t.Fatalf("the working clone served %d calls, want 20", good.calls.Load())
	}
}

func TestErrorsAreCategorised(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	if _, err := newClient(t, down.URL).Products(context.Background(), []int64{1}); problem.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("a catalog answering 503: %v, want unavailable", err)
	}
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer busy.Close()
	if _, err := newClient(t, busy.URL).Reserve(context.Background(), "x", nil); errors.Is(err, orders.ErrCatalogRefused) || problem.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("a catalog answering 429: %v, want unavailable (waited out), not refused (dead-lettered)", err)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer refusing.Close()
	_, err := newClient(t, refusing.URL).Reserve(context.Background(), "x", nil)
	if !errors.Is(err, orders.ErrCatalogRefused) {
		t.Fatalf("a catalog answering 400: %v, want ErrCatalogRefused", err)
	}
}
