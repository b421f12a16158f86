package httpapi_test

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/apicontract"
)

// TestPublicRoutesAreTheDocumentedOnes: every route the catalog serves
// under /api/products (which the gateway forwards to it) is in
// docs/openapi.yaml, and every operation documented there is served.
func TestPublicRoutesAreTheDocumentedOnes(t *testing.T) {
	contract, err := apicontract.Load()
	if err != nil {
		t.Fatal(err)
	}
	var served []apicontract.Operation
	for _, rt := range newRouter(t, newFakeStore(1)).Routes() {
		served = append(served, apicontract.Operation{Method: rt.Method, Path: rt.Path})
	}
	undocumented, unserved := contract.Compare("/api/products", served)
	for _, op := range undocumented {
		t.Errorf("the catalog serves %s; docs/openapi.yaml does not document it", op)
	}
	for _, op := range unserved {
		t.Errorf("docs/openapi.yaml documents %s; the catalog does not serve it", op)
	}
}
