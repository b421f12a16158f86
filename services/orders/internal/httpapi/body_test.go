package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

// A bad order body is refused with the field it got wrong, in the API's
// words, and places nothing.
func TestPlaceRefusesBadBodies(t *testing.T) {
	r := newRouter(t, orderstest.NewStore(), orderstest.Backlog(false))
	tests := []struct {
		name, body, field string
		status            int
	}{
		{"unknown field", `{"items":[{"product_id":2,"quantity":3}],"coupon":"FREE"}`, "coupon", 400},
		{"unknown nested field", `{"items":[{"product_id":2,"qty":3}]}`, "items[0].qty", 400},
		{"wrong type", `{"items":[{"product_id":"two","quantity":3}]}`, "items[0].product_id", 400},
		{"not JSON", `items=2`, "body", 400},
		{"too large", `{"items":[` + strings.Repeat(`{"product_id":2,"quantity":3},`, 4000) + `]}`, "", 413},
	}
	for _, tt := range tests {
		w := do(r, call{method: "POST", path: "/api/orders", user: "erin", body: tt.body})
		if w.Code != tt.status || w.Header().Get("Content-Type") != problem.ContentType {
			t.Errorf("%s: %d %s", tt.name, w.Code, w.Header().Get("Content-Type"))
			continue
		}
		var d problem.Details
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.field != "" && (len(d.Errors) != 1 || d.Errors[0].Field != tt.field) {
			t.Errorf("%s: field errors %+v, want one on %q", tt.name, d.Errors, tt.field)
		}
		if strings.Contains(w.Body.String(), "json:") || strings.Contains(w.Body.String(), "int64") {
			t.Errorf("%s: the decoder's own text reached the client: %s", tt.name, w.Body.String())
		}
	}
	w := do(r, call{method: "GET", path: "/api/orders", user: "erin"})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"id"`) {
		t.Fatalf("a refused body placed an order: %d %s", w.Code, w.Body.String())
	}
}
