package apicontract

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func load(t *testing.T) *Contract {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTheDocumentIsValidOpenAPI31(t *testing.T) {
	c := load(t)
	if n := len(c.Operations()); n < 10 {
		t.Errorf("%d operations documented; the public API has more", n)
	}
}

// TestCheckCatchesWhatAClientWouldTripOn: the validator the e2e tests use
// fails on a wrong body, an undocumented status and a missing header, and
// passes a right answer, so a green e2e run means something.
func TestCheckCatchesWhatAClientWouldTripOn(t *testing.T) {
	c := load(t)
	ids := http.Header{
		"X-Request-Id":    {"r-1"},
		"X-Trace-Id":      {"0123456789abcdef0123456789abcdef"},
		"Content-Type":    {"application/json; charset=utf-8"},
		"Etag":            {`"p1-v2"`},
		"X-Served-From":   {"replica"},
		"X-Db-Queries":    {"1"},
		"Ratelimit-Limit": {"2000"},
	}
	product := `{"id":1,"sku":"SKU-1","name":"n","description":"","category":"books","price_cents":100,
		"currency":"USD","stock":3,"attributes":{},"version":2,"updated_at":"2026-12-01T10:00:00.123456Z"}`
	withoutTrace := ids.Clone()
	withoutTrace.Del("X-Trace-Id")
	problemHeader := ids.Clone()
	problemHeader.Set("Content-Type", "application/problem+json")
	for _, tc := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"a product", "GET", "/api/products/1", 200, ids, product, true},
		{"a product lacking its version", "GET", "/api/products/1", 200, ids, strings.Replace(product, `"version":2,`, "", 1), false},
		{"a product with a string price", "GET", "/api/products/1", 200, ids, strings.Replace(product, `"price_cents":100`, `"price_cents":"100"`, 1), false},
		{"a status the operation does not document", "GET", "/api/products/1", 418, ids, product, false},
		{"no X-Trace-Id", "GET", "/api/products/1", 200, withoutTrace, product, false},
		{"a problem", "GET", "/api/products/999", 404, problemHeader, `{"type":"about:blank","title":"Not Found","status":404}`, true},
		{"a problem without a status", "GET", "/api/products/999", 404, problemHeader, `{"type":"about:blank","title":"Not Found"}`, false},
		{"a rejected order without its reason", "GET", "/api/orders/3-0190d4c2-7d1a-7c3e-8f00-000000000001", 200, ids,
			`{"id":"3-0190d4c2-7d1a-7c3e-8f00-000000000001","customer_id":"a","status":"rejected","items":[],"total_cents":0,"currency":"USD",
			"created_at":"2026-12-01T10:00:00Z","updated_at":"2026-12-01T10:00:01Z"}`, false},
		{"a route nobody documented", "GET", "/internal/products", 200, ids, `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(httptest.NewRequest(tc.method, tc.path, nil), tc.status, tc.header, []byte(tc.body))
			if tc.ok && err != nil {
				t.Errorf("a right answer failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("a wrong answer passed")
			}
		})
	}
}
