package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/docs"
	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/apicontract"
	"github.com/scaleshop/scaleshop/infra/balancer"
)

// forwardedPrefix is the route prefix op falls under, "" when the gateway
// answers it itself.
func forwardedPrefix(op apicontract.Operation) string {
	for _, rt := range apiRoutes(&balancer.Pool{}, &balancer.Pool{}) {
		if op.Path == rt.Prefix || strings.HasPrefix(op.Path, rt.Prefix+"/") {
			return rt.Prefix
		}
	}
	return ""
}

// TestEveryRouteIsDocumentedAndEveryDocumentedRouteIsRouted holds the
// gateway to docs/openapi.yaml both ways: the routes it answers itself are
// exactly the documented ones outside its forwarded prefixes, every
// forwarded prefix is documented, and every documented operation reaches
// its service. (Each service's test holds its own routes under its prefix
// to the document.)
func TestEveryRouteIsDocumentedAndEveryDocumentedRouteIsRouted(t *testing.T) {
	contract, err := apicontract.Load()
	if err != nil {
		t.Fatal(err)
	}
	ops := contract.Operations()

	p := testPorts(t)
	public, backend := p.public, p.backend
	own := p.api.OwnRoutes()
	for pattern := range probes(nil) {
		own = append(own, pattern)
	}
	var documentedOwn []string
	documentedPrefixes := map[string]bool{}
	for _, op := range ops {
		if p := forwardedPrefix(op); p != "" {
			documentedPrefixes[p] = true
			continue
		}
		documentedOwn = append(documentedOwn, op.String())
	}
	slices.Sort(own)
	slices.Sort(documentedOwn)
	if !slices.Equal(own, documentedOwn) {
		t.Errorf("the gateway answers %q itself; docs/openapi.yaml documents %q there", own, documentedOwn)
	}
	for _, rt := range apiRoutes(&balancer.Pool{}, &balancer.Pool{}) {
		if !documentedPrefixes[rt.Prefix] {
			t.Errorf("the gateway forwards %s*, and docs/openapi.yaml documents nothing there", rt.Prefix)
		}
	}

	admin := adminToken(t)
	for _, op := range ops {
		path := strings.NewReplacer("{id}", "1").Replace(op.Path)
		body := ""
		if op.Method == http.MethodPost || op.Method == http.MethodPut {
			body = `{"customer_id":"alice"}`
		}
		req := httptest.NewRequest(op.Method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		before := len(backend.seen())
		public.ServeHTTP(w, req)
		if forwardedPrefix(op) != "" {
			seen := backend.seen()
			if len(seen) != before+1 || seen[before] != path {
				t.Errorf("%s: documented, but the gateway did not forward it (%d %s)", op, w.Code, w.Body)
			}
			continue
		}
		if w.Code >= 300 {
			t.Errorf("%s: documented, but the gateway answers %d %s", op, w.Code, w.Body)
		}
	}
}

func TestTheGatewayServesTheDocument(t *testing.T) {
	public := testPorts(t).public
	w := get(public, proxy.OpenAPIPath)
	if w.Code != http.StatusOK || w.Body.String() != string(docs.OpenAPI()) {
		t.Fatalf("GET %s: %d, %d bytes; want 200 and docs/openapi.yaml as it is", proxy.OpenAPIPath, w.Code, w.Body.Len())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q", ct)
	}
	req := httptest.NewRequest(http.MethodGet, proxy.OpenAPIPath, nil)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	again := httptest.NewRecorder()
	public.ServeHTTP(again, req)
	if again.Code != http.StatusNotModified {
		t.Errorf("with its ETag: %d, want 304", again.Code)
	}
}
