package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/httpapi"
)

func TestListPagesGoOutCompressedToClientsThatAcceptGzip(t *testing.T) {
	big := `{"items":[` + strings.Repeat(`{"id":1,"name":"Portable Lamp","description":"A portable lamp."},`, 60) + `{}],"next_cursor":""}`
	store := &encodedStore{fakeStore: newFakeStore(1),
		product: catalog.Encoded{Body: []byte(`{"id":1,"pad":"` + strings.Repeat("x", 2000) + `"}`), ETag: `"p1-v7"`},
		page:    catalog.Encoded{Body: []byte(big), ETag: `W/"l-x"`},
	}
	h, err := httpapi.Compress(newRouter(t, store))
	if err != nil {
		t.Fatal(err)
	}
	gz := map[string]string{"Accept-Encoding": "gzip"}

	w := do(h, request{method: "GET", path: "/api/products?limit=100", header: gz})
	if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("list page with Accept-Encoding gzip = %d, Content-Encoding %q; want 200 gzip", w.Code, w.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != big {
		t.Errorf("the page decompresses to %d bytes (err %v), want the %d stored", len(plain), err, len(big))
	}
	if w.Body.Len() >= len(big)/4 {
		t.Errorf("compressed page is %d bytes of %d: gzip should take off more than 3/4", w.Body.Len(), len(big))
	}
	if v := w.Header().Values("Vary"); !strings.Contains(strings.Join(v, ","), "Accept-Encoding") || !strings.Contains(strings.Join(v, ","), httpapi.HeaderToken) {
		t.Errorf("Vary = %q, want Accept-Encoding and %s", v, httpapi.HeaderToken)
	}
	if got := w.Header().Get("ETag"); got != store.page.ETag {
		t.Errorf("compressed page ETag = %q, want the weak tag %q unchanged", got, store.page.ETag)
	}
	if w := do(h, request{method: "GET", path: "/api/products?limit=100", header: map[string]string{"Accept-Encoding": "gzip", "If-None-Match": store.page.ETag}}); w.Code != http.StatusNotModified {
		t.Errorf("revalidating the compressed page = %d, want 304", w.Code)
	}

	w = do(h, request{method: "GET", path: "/api/products?limit=100"})
	if w.Header().Get("Content-Encoding") != "" || w.Body.String() != big {
		t.Errorf("list page without Accept-Encoding came %q-encoded, want it as stored", w.Header().Get("Content-Encoding"))
	}
	// A shared cache must not hand this identity copy to a gzip client.
	if v := strings.Join(w.Header().Values("Vary"), ","); !strings.Contains(v, "Accept-Encoding") || !strings.Contains(v, httpapi.HeaderToken) {
		t.Errorf("uncompressed page Vary = %q, want Accept-Encoding and %s", v, httpapi.HeaderToken)
	}
	w = do(h, request{method: "GET", path: "/api/products/1", header: gz})
	if w.Header().Get("Content-Encoding") != "" || w.Body.String() != string(store.product.Body) || w.Header().Get("No-Gzip-Compression") != "" {
		t.Errorf("a product (strong ETag) came %q-encoded, want its exact bytes", w.Header().Get("Content-Encoding"))
	}
}
