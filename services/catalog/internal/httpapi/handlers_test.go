package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

var (
	admin    = map[string]string{"X-User-Id": "root", "X-User-Role": "admin"}
	customer = map[string]string{"X-User-Id": "alice", "X-User-Role": "customer"}
)

const validBody = `{"sku":"NEW-1","name":"New thing","description":"d","category":"books",
	"price_cents":1999,"currency":"USD","stock":3,"attributes":{"size":"M"}}`

func withHeader(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestEveryStatus drives the real router through each status the API
// promises, with a fake store behind it.
func TestEveryStatus(t *testing.T) {
	tests := []struct {
		name   string
		req    request
		down   bool
		status int
		check  func(t *testing.T, h http.Header, body string)
	}{
		{name: "get", req: request{method: "GET", path: "/api/products/1"}, status: 200,
			check: func(t *testing.T, h http.Header, body string) {
				want := map[string]string{"ETag": `"p1-v1"`, "Cache-Control": "public, max-age=5", "X-Served-From": "replica"}
				for k, v := range want {
					if h.Get(k) != v {
						t.Errorf("%s = %q, want %q", k, h.Get(k), v)
					}
				}
				var p map[string]any
				if err := json.Unmarshal([]byte(body), &p); err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{"id", "sku", "name", "description", "category", "price_cents", "currency", "stock", "attributes", "version", "updated_at"} {
					if _, ok := p[f]; !ok {
						t.Errorf("product JSON lacks %q: %s", f, body)
					}
				}
			}},
		{name: "get 304", req: request{method: "GET", path: "/api/products/1", header: map[string]string{"If-None-Match": `W/"x", "p1-v1"`}}, status: 304,
			check: func(t *testing.T, h http.Header, body string) {
				if body != "" || h.Get("ETag") != `"p1-v1"` {
					t.Errorf("304 must have no body and the ETag; body %q etag %q", body, h.Get("ETag"))
				}
			}},
		{name: "get stale If-None-Match", req: request{method: "GET", path: "/api/products/1", header: map[string]string{"If-None-Match": `"p1-v0"`}}, status: 200},
		{name: "get unknown", req: request{method: "GET", path: "/api/products/999"}, status: 404},
		{name: "get bad id", req: request{method: "GET", path: "/api/products/abc"}, status: 400},
		{name: "get bad token", req: request{method: "GET", path: "/api/products/1", header: map[string]string{"X-Consistency-Token": "nope"}}, status: 400},
		{name: "get with token", req: request{method: "GET", path: "/api/products/1", header: map[string]string{"X-Consistency-Token": "1/AB"}}, status: 200,
			check: func(t *testing.T, h http.Header, _ string) {
				if h.Get("Cache-Control") != "no-cache" {
					t.Errorf("a token read is Cache-Control %q, want no-cache", h.Get("Cache-Control"))
				}
			}},
		{name: "database down", req: request{method: "GET", path: "/api/products/1"}, down: true, status: 503},
		{name: "list", req: request{method: "GET", path: "/api/products?category=books&limit=2"}, status: 200,
			check: func(t *testing.T, h http.Header, body string) {
				var page catalog.Page
				if err := json.Unmarshal([]byte(body), &page); err != nil {
					t.Fatal(err)
				}
				if len(page.Items) != 2 || page.NextCursor == "" || h.Get("ETag") == "" {
					t.Errorf("page = %d items, cursor %q, etag %q", len(page.Items), page.NextCursor, h.Get("ETag"))
				}
			}},
		{name: "list empty is []", req: request{method: "GET", path: "/api/products?category=none"}, status: 200,
			check: func(t *testing.T, _ http.Header, body string) {
				if !strings.Contains(body, `"items":[]`) {
					t.Errorf("empty page = %s", body)
				}
			}},
		{name: "list bad limit", req: request{method: "GET", path: "/api/products?limit=101"}, status: 400},
		{name: "list bad cursor", req: request{method: "GET", path: "/api/products?cursor=bm9wZQ"}, status: 400},
		{name: "create", req: request{method: "POST", path: "/api/products", body: validBody, header: admin}, status: 201,
			check: func(t *testing.T, h http.Header, _ string) {
				if h.Get("Location") != "/api/products/11" || h.Get("Cache-Control") != "no-store" || h.Get("X-Consistency-Token") != "1/AB" {
					t.Errorf("Location %q, Cache-Control %q, token %q", h.Get("Location"), h.Get("Cache-Control"), h.Get("X-Consistency-Token"))
				}
			}},
		{name: "create anonymous", req: request{method: "POST", path: "/api/products", body: validBody}, status: 401},
		{name: "create as customer", req: request{method: "POST", path: "/api/products", body: validBody, header: customer}, status: 403},
		{name: "create duplicate sku", req: request{method: "POST", path: "/api/products", header: admin,
			body: strings.Replace(validBody, "NEW-1", "SKU-1", 1)}, status: 409},
		{name: "create invalid", req: request{method: "POST", path: "/api/products", header: admin,
			body: `{"sku":"","name":"","category":"x","price_cents":-1,"currency":"usd","stock":-2,"attributes":[1]}`}, status: 400,
			check: func(t *testing.T, _ http.Header, body string) {
				var d problem.Details
				if err := json.Unmarshal([]byte(body), &d); err != nil {
					t.Fatal(err)
				}
				fields := map[string]bool{}
				for _, f := range d.Errors {
					fields[f.Field] = true
				}
				for _, f := range []string{"sku", "name", "price_cents", "currency", "stock", "attributes"} {
					if !fields[f] {
						t.Errorf("problem does not name %q: %s", f, body)
					}
				}
			}},
		{name: "create wrong type", req: request{method: "POST", path: "/api/products", header: admin, body: `{"price_cents":"ten"}`}, status: 400},
		{name: "create unknown field", req: request{method: "POST", path: "/api/products", header: admin, body: `{"prize":1}`}, status: 400},
		{name: "create two objects", req: request{method: "POST", path: "/api/products", header: admin, body: validBody + validBody}, status: 400},
		{name: "create too large", req: request{method: "POST", path: "/api/products", header: admin, body: `{"name":"` + strings.Repeat("x", 70<<10) + `"}`}, status: 413},
		{name: "create primary down", req: request{method: "POST", path: "/api/products", header: admin, body: validBody}, down: true, status: 503},
		{name: "update", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `"p1-v1"`), body: validBody}, status: 200,
			check: func(t *testing.T, h http.Header, _ string) {
				if h.Get("ETag") != `"p1-v2"` {
					t.Errorf("ETag after update = %q", h.Get("ETag"))
				}
			}},
		{name: "update stale If-Match", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `"p1-v7"`), body: validBody}, status: 412},
		{name: "update stale body version", req: request{method: "PUT", path: "/api/products/1", header: admin,
			body: strings.Replace(validBody, `"stock":3`, `"stock":3,"version":9`, 1)}, status: 412},
		// If-Match (RFC 9110 §13.1.1): a valid tag that is not current is
		// 412, only a malformed field is 400.
		{name: "update If-Match tag never issued", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `"stale-0"`), body: validBody}, status: 412},
		{name: "update If-Match other product's tag", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `"p2-v1"`), body: validBody}, status: 412},
		{name: "update If-Match weak current tag", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `W/"p1-v1"`), body: validBody}, status: 412},
		{name: "update If-Match list with the current tag", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `"p1-v7", W/"p1-v1", "p1-v1"`), body: validBody}, status: 200,
			check: func(t *testing.T, h http.Header, _ string) {
				if h.Get("ETag") != `"p1-v2"` {
					t.Errorf("ETag after update = %q", h.Get("ETag"))
				}
			}},
		{name: "update If-Match star", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", "*"), body: validBody}, status: 200},
		{name: "update If-Match star on a missing product", req: request{method: "PUT", path: "/api/products/999", header: withHeader(admin, "If-Match", "*"), body: validBody}, status: 404},
		{name: "update If-Match stale on a missing product", req: request{method: "PUT", path: "/api/products/999", header: withHeader(admin, "If-Match", `"p999-v1"`), body: validBody}, status: 404},
		{name: "update If-Match unquoted", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `p1-v1`), body: validBody}, status: 400},
		{name: "update If-Match bare version", req: request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", `1`), body: validBody}, status: 400},
		{name: "update unknown", req: request{method: "PUT", path: "/api/products/999", header: admin, body: validBody}, status: 404},
		{name: "update as customer", req: request{method: "PUT", path: "/api/products/1", header: customer, body: validBody}, status: 403},
		{name: "delete", req: request{method: "DELETE", path: "/api/products/2", header: admin}, status: 204},
		{name: "delete stale", req: request{method: "DELETE", path: "/api/products/2", header: withHeader(admin, "If-Match", `"p2-v5"`)}, status: 412},
		{name: "delete weak current tag", req: request{method: "DELETE", path: "/api/products/2", header: withHeader(admin, "If-Match", `W/"p2-v1"`)}, status: 412},
		{name: "delete malformed If-Match", req: request{method: "DELETE", path: "/api/products/2", header: withHeader(admin, "If-Match", `"p2-v1`)}, status: 400},
		{name: "delete unknown", req: request{method: "DELETE", path: "/api/products/999", header: admin}, status: 404},
		{name: "delete anonymous", req: request{method: "DELETE", path: "/api/products/2"}, status: 401},
		{name: "internal get many", req: request{method: "GET", path: "/internal/products?ids=3,1,999"}, status: 200,
			check: func(t *testing.T, _ http.Header, body string) {
				var got struct{ Items []catalog.Product }
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Items) != 2 || got.Items[0].ID != 3 || got.Items[1].ID != 1 {
					t.Errorf("items = %+v, want 3 then 1", got.Items)
				}
			}},
		{name: "internal get many bad id", req: request{method: "GET", path: "/internal/products?ids=1,x"}, status: 400},
		{name: "internal get many none", req: request{method: "GET", path: "/internal/products"}, status: 400},
		{name: "internal get many too many", req: request{method: "GET", path: "/internal/products?ids=" + strings.Repeat("1,", 100) + "1"}, status: 400},
		{name: "reserve", req: request{method: "POST", path: "/internal/reservations",
			body: `{"order_id":"o-1","items":[{"product_id":1,"quantity":2}]}`}, status: 200,
			check: func(t *testing.T, _ http.Header, body string) {
				if body != `{"order_id":"o-1","status":"reserved","items":[{"product_id":1,"quantity":2}]}` {
					t.Errorf("body = %s", body)
				}
			}},
		{name: "reserve out of stock", req: request{method: "POST", path: "/internal/reservations",
			body: `{"order_id":"o-2","items":[{"product_id":1,"quantity":9}]}`}, status: 200,
			check: func(t *testing.T, _ http.Header, body string) {
				if !strings.Contains(body, `"status":"out_of_stock"`) {
					t.Errorf("body = %s", body)
				}
			}},
		{name: "reserve bad body", req: request{method: "POST", path: "/internal/reservations", body: `{"order_id":"","items":[]}`}, status: 400},
		{name: "reserve bad quantity", req: request{method: "POST", path: "/internal/reservations", body: `{"order_id":"o","items":[{"product_id":1,"quantity":0}]}`}, status: 400},
		{name: "release", req: request{method: "DELETE", path: "/internal/reservations/o-unknown"}, status: 200,
			check: func(t *testing.T, _ http.Header, body string) {
				if body != `{"order_id":"o-unknown","status":"released"}` {
					t.Errorf("body = %s", body)
				}
			}},
		{name: "wrong method", req: request{method: "PATCH", path: "/api/products/1"}, status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore(10)
			store.down = tt.down
			w := do(newRouter(t, store), tt.req)
			if w.Code != tt.status {
				t.Fatalf("%s %s = %d, want %d: %s", tt.req.method, tt.req.path, w.Code, tt.status, w.Body.String())
			}
			if w.Code >= 400 {
				if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
					t.Errorf("error Content-Type = %q, want %q", ct, problem.ContentType)
				}
				if w.Code >= 500 && strings.Contains(w.Body.String(), "unreachable") {
					t.Errorf("a 5xx leaks the cause: %s", w.Body.String())
				}
			}
			if tt.check != nil {
				tt.check(t, w.Header(), strings.TrimSpace(w.Body.String()))
			}
		})
	}
}

func TestReadSendsTheConsistencyTokenAndNoCacheToTheStore(t *testing.T) {
	store := newFakeStore(1)
	r := newRouter(t, store)
	do(r, request{method: "GET", path: "/api/products/1", header: map[string]string{
		"X-Consistency-Token": "2/10", "Cache-Control": "no-cache"}})
	if want := (catalog.ReadOpts{After: catalog.LSN(2<<32 | 0x10), NoCache: true}); store.lastOpts != want {
		t.Errorf("store saw %+v, want %+v", store.lastOpts, want)
	}
}

func TestPagingVisitsEveryProductOnce(t *testing.T) {
	store := newFakeStore(25)
	r := newRouter(t, store)
	seen := map[int64]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		w := do(r, request{method: "GET", path: "/api/products?limit=7&cursor=" + cursor})
		var page catalog.Page
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Items {
			seen[p.ID]++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		// A product added mid-paging appears at the end, never shifts a page.
		if pages == 1 {
			do(r, request{method: "POST", path: "/api/products", header: admin, body: validBody})
		}
	}
	if len(seen) != 26 {
		t.Errorf("saw %d distinct products, want 26", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("product %d seen %d times", id, n)
		}
	}
}

// TestFailedPreconditionChangesNothing: a 412 leaves the product as it was.
func TestFailedPreconditionChangesNothing(t *testing.T) {
	store := newFakeStore(1)
	r := newRouter(t, store)
	for _, tag := range []string{`"stale-0"`, `W/"p1-v1"`, `"p1-v2", "p1-v3"`} {
		w := do(r, request{method: "PUT", path: "/api/products/1", header: withHeader(admin, "If-Match", tag), body: validBody})
		if w.Code != http.StatusPreconditionFailed {
			t.Errorf("If-Match %s: status %d, want 412", tag, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("If-Match %s: Content-Type %q, want problem+json", tag, ct)
		}
	}
	w := do(r, request{method: "GET", path: "/api/products/1"})
	if etag := w.Header().Get("ETag"); etag != `"p1-v1"` {
		t.Errorf("after three failed preconditions the ETag is %s, want the untouched \"p1-v1\"", etag)
	}
}
