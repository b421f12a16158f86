package httpapi

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/apicontract"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

// TestPublicRoutesAreTheDocumentedOnes: every route the orders API serves
// under /api/orders (which the gateway forwards to it) is in
// docs/openapi.yaml, and every operation documented there is served.
func TestPublicRoutesAreTheDocumentedOnes(t *testing.T) {
	contract, err := apicontract.Load()
	if err != nil {
		t.Fatal(err)
	}
	var served []apicontract.Operation
	for _, rt := range newRouter(t, orderstest.NewStore(), orderstest.Backlog(false)).Routes() {
		served = append(served, apicontract.Operation{Method: rt.Method, Path: rt.Path})
	}
	undocumented, unserved := contract.Compare("/api/orders", served)
	for _, op := range undocumented {
		t.Errorf("the orders API serves %s; docs/openapi.yaml does not document it", op)
	}
	for _, op := range unserved {
		t.Errorf("docs/openapi.yaml documents %s; the orders API does not serve it", op)
	}
}
