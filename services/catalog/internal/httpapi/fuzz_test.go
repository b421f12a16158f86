package httpapi_test

import (
	"net/url"
	"testing"
)

// FuzzWriteBodies sends arbitrary create, update and reservation bodies:
// whatever a client sends, the answer is never a 5xx. The fake store
// refuses, as a 500, what Postgres would refuse, so anything that slips
// through validation shows up here. The seed corpus runs in plain go test.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		validBody,
		`{}`, `null`, `[]`, `"x"`, `{"sku":"A"}`,
		`{"sku":"A-1","name":"n","category":"c","price_cents":1,"currency":"USD","stock":0,"attributes":{"k":"\u0000"}}`,
		`{"sku":"A-1","name":"\u0000","category":"c","price_cents":1,"currency":"USD","stock":0}`,
		`{"sku":"A-1","name":"n","category":"c","price_cents":1e30,"currency":"USD","stock":0}`,
		`{"sku":"A-1","name":"n","category":"c","price_cents":1,"currency":"USD","stock":0,"attributes":{"n":1e999999}}`,
		`{"sku":"A-1","name":"n","category":"c","price_cents":1,"currency":"USD","stock":0,"attributes":null}`,
		"{\"sku\":\"A-1\",\"name\":\"\xff\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"USD\",\"stock\":0}",
		`{"order_id":"o","items":[{"product_id":1,"quantity":1},{"product_id":1,"quantity":10000}]}`,
		`{"order_id":"o","items":[{"product_id":-1,"quantity":1}]}`,
		`{"sku":"A-1","version":0}`,
	} {
		f.Add(seed, `"p1-v1"`)
	}
	f.Fuzz(func(t *testing.T, body, ifMatch string) {
		store := newFakeStore(3)
		r := newRouter(t, store)
		for _, req := range []request{
			{method: "POST", path: "/api/products", body: body, header: admin},
			{method: "PUT", path: "/api/products/1", body: body, header: withHeader(admin, "If-Match", ifMatch)},
			{method: "POST", path: "/internal/reservations", body: body},
		} {
			if w := do(r, req); w.Code >= 500 {
				t.Fatalf("%s %s with %q = %d: %s", req.method, req.path, body, w.Code, w.Body.String())
			}
		}
	})
}

// FuzzQueries sends arbitrary list parameters, ids and tokens.
func FuzzQueries(f *testing.F) {
	f.Add("books", "lamp", "20", "", "1,2,3", "0/16B3748", "1")
	f.Add("", "%_\\", "0", "aWQ6NDA", "", "", "-1")
	f.Add("\x00", "\xff", "abc", "!!", "1,,2", "FFFFFFFF/FFFFFFFF", "99999999999999999999")
	f.Fuzz(func(t *testing.T, category, q, limit, cursor, ids, token, id string) {
		r := newRouter(t, newFakeStore(3))
		v := url.Values{"category": {category}, "q": {q}, "limit": {limit}, "cursor": {cursor}}
		for _, req := range []request{
			{method: "GET", path: "/api/products?" + v.Encode(), header: map[string]string{"X-Consistency-Token": token}},
			{method: "GET", path: "/api/products/" + url.PathEscape(id)},
			{method: "GET", path: "/internal/products?" + url.Values{"ids": {ids}}.Encode()},
			{method: "DELETE", path: "/internal/reservations/" + url.PathEscape(id)},
		} {
			if w := do(r, req); w.Code >= 500 {
				t.Fatalf("%s %s = %d: %s", req.method, req.path, w.Code, w.Body.String())
			}
		}
	})
}
