package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scaleshop/scaleshop/infra/httpserver"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

func newRouter(t *testing.T, store *orderstest.Store, backlog orders.Backlog) *gin.Engine {
	t.Helper()
	return newRouterFor(t, orders.NewService(store, orderstest.NewCatalog(5, 100), backlog, 8))
}

func newRouterFor(t *testing.T, svc *orders.Service) *gin.Engine {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "orders", Instance: "test", SampleRatio: 1}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := httpserver.NewEngine(tel)
	Mount(r, svc, tel.Logger)
	return r
}

type call struct {
	method, path, user, role, key, body string
}

func do(r http.Handler, c call) *httptest.ResponseRecorder {
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.user != "" {
		req.Header.Set(identity.HeaderID, c.user)
	}
	if c.role != "" {
		req.Header.Set(identity.HeaderRole, c.role)
	}
	if c.key != "" {
		req.Header.Set("Idempotency-Key", c.key)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return m
}

const body = `{"items":[{"product_id":2,"quantity":3}]}`

func TestPlaceAndRead(t *testing.T) {
	r := newRouter(t, orderstest.NewStore(), orderstest.Backlog(false))

	if w := do(r, call{method: "POST", path: "/api/orders", body: body}); w.Code != http.StatusUnauthorized ||
		w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no identity: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	w := do(r, call{method: "POST", path: "/api/orders", user: "alice", key: "k", body: body})
	if w.Code != http.StatusAccepted {
		t.Fatalf("POST = %d %s", w.Code, w.Body)
	}
	o := decode(t, w)
	if o["status"] != "pending" || o["total_cents"] != 600.0 || o["currency"] != "USD" || o["customer_id"] != "alice" ||
		w.Header().Get("Location") != "/api/orders/"+o["id"].(string) {
		t.Fatalf("placed %v, Location %q", o, w.Header().Get("Location"))
	}
	// Replay: same status and order.
	again := do(r, call{method: "POST", path: "/api/orders", user: "alice", key: "k", body: body})
	if again.Code != http.StatusAccepted || decode(t, again)["id"] != o["id"] {
		t.Fatalf("replay = %d %s", again.Code, again.Body)
	}
	if w := do(r, call{method: "POST", path: "/api/orders", user: "alice", key: "k", body: `{"items":[{"product_id":1,"quantity":1}]}`}); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("key reused with another body = %d", w.Code)
	}
	for _, tc := range []struct {
		user, role string
		want       int
	}{{"alice", "", 200}, {"root", "admin", 200}, {"mallory", "customer", 404}} {
		if w := do(r, call{method: "GET", path: "/api/orders/" + o["id"].(string), user: tc.user, role: tc.role}); w.Code != tc.want {
			t.Errorf("GET as %s = %d, want %d", tc.user, w.Code, tc.want)
		}
	}
	if w := do(r, call{method: "GET", path: "/api/orders/not-an-id", user: "alice"}); w.Code != http.StatusNotFound {
		t.Errorf("GET of a malformed id = %d, want 404", w.Code)
	}
	for _, bad := range []string{`{"items":[]}`, `{"items":[{"product_id":99,"quantity":1}]}`, `nope`} {
		if w := do(r, call{method: "POST", path: "/api/orders", user: "alice", body: bad}); w.Code != http.StatusBadRequest {
			t.Errorf("POST %s = %d, want 400", bad, w.Code)
		}
	}
}

func TestListPagesWithACursor(t *testing.T) {
	r := newRouter(t, orderstest.NewStore(), orderstest.Backlog(false))
	for range 5 {
		if w := do(r, call{method: "POST", path: "/api/orders", user: "bob", body: body}); w.Code != http.StatusAccepted {
			t.Fatal(w.Body)
		}
	}
	do(r, call{method: "POST", path: "/api/orders", user: "carol", body: body})
	seen := map[string]bool{}
	path := "/api/orders?limit=2"
	for pages := 0; ; pages++ {
		w := do(r, call{method: "GET", path: path, user: "bob"})
		var page listJSON
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
			t.Fatalf("list = %d %s", w.Code, w.Body)
		}
		for _, o := range page.Items {
			if o.CustomerID != "bob" || seen[o.ID] {
				t.Fatalf("page has %s of %s (seen before: %v)", o.ID, o.CustomerID, seen[o.ID])
			}
			seen[o.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		path = "/api/orders?limit=2&cursor=" + page.NextCursor
	}
	if len(seen) != 5 {
		t.Fatalf("listed %d of bob's 5 orders", len(seen))
	}
	if w := do(r, call{method: "GET", path: "/api/orders?scope=all", user: "bob"}); w.Code != http.StatusForbidden {
		t.Fatalf("scope=all as a customer = %d, want 403", w.Code)
	}
	w := do(r, call{method: "GET", path: "/api/orders?scope=all&limit=100", user: "root", role: "admin"})
	var all listJSON
	_ = json.Unmarshal(w.Body.Bytes(), &all)
	if len(all.Items) != 6 {
		t.Fatalf("admin listing has %d orders, want 6", len(all.Items))
	}
}

func TestLongPollReturnsWhenTheOrderIsDecided(t *testing.T) {
	store := orderstest.NewStore()
	waiter := &orderstest.Waiter{}
	r := newRouterFor(t, orders.NewService(store, orderstest.NewCatalog(5, 100), orderstest.Backlog(false), 8).WithWaiter(waiter))
	o := decode(t, do(r, call{method: "POST", path: "/api/orders", user: "dan", body: body}))
	id, _ := orders.ParseID(o["id"].(string), 8)
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		answered <- do(r, call{method: "GET", path: "/api/orders/" + o["id"].(string) + "?wait=1m", user: "dan"})
	}()
	// The worker decides once the long poll waits on the order, and wakes it
	// as the database notification would.
	deadline := time.After(30 * time.Second)
	for waiter.Subscribers(id) == 0 {
		select {
		case w := <-answered:
			t.Fatalf("the long poll answered before the order was decided: %d %s", w.Code, w.Body)
		case <-deadline:
			t.Fatal("the long poll never waited for the order's status")
		case <-time.After(time.Millisecond):
		}
	}
	cur, _ := store.Get(context.Background(), id)
	cur.Status = orders.StatusConfirmed
	if _, err := store.Finalize(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	waiter.Notify(id, orders.StatusEvent{})
	if w := <-answered; w.Code != 200 || decode(t, w)["status"] != "confirmed" {
		t.Fatalf("long poll answered %d %s, want the confirmed order", w.Code, w.Body)
	}
	// Still pending at the deadline: the pending order, not an error.
	o2 := decode(t, do(r, call{method: "POST", path: "/api/orders", user: "dan", body: body}))
	w := do(r, call{method: "GET", path: "/api/orders/" + o2["id"].(string) + "?wait=100ms", user: "dan"})
	if w.Code != 200 || decode(t, w)["status"] != "pending" {
		t.Fatalf("long poll timeout = %d %s", w.Code, w.Body)
	}
}

func TestBackPressure(t *testing.T) {
	r := newRouter(t, orderstest.NewStore(), orderstest.Backlog(true))
	w := do(r, call{method: "POST", path: "/api/orders", user: "erin", body: body})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the outbox bound: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
	}
}
