package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// encodedStore is a store that answers reads in wire form, as the memcached
// cache does: the API must send its bytes as they are.
type encodedStore struct {
	*fakeStore
	product, page catalog.Encoded
}

func (s *encodedStore) GetEncoded(context.Context, int64, catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	return s.product, catalog.FromCache, nil
}

func (s *encodedStore) ListEncoded(context.Context, catalog.ListQuery, catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	return s.page, catalog.FromCache, nil
}

func TestEncodedReadsAreSentAsStored(t *testing.T) {
	// Bodies no encoder would produce (spacing, key order), so a re-encode shows.
	store := &encodedStore{fakeStore: newFakeStore(1),
		product: catalog.Encoded{Body: []byte(`{"version":7,  "id":1}`), ETag: `"p1-v7"`},
		page:    catalog.Encoded{Body: []byte(`{"next_cursor":"", "items":[]}`), ETag: `W/"l-x"`},
	}
	r := newRouter(t, store)
	for _, tc := range []struct {
		path string
		want catalog.Encoded
	}{{"/api/products/1", store.product}, {"/api/products?limit=5", store.page}} {
		w := do(r, request{method: "GET", path: tc.path})
		if w.Code != http.StatusOK || w.Body.String() != string(tc.want.Body) {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, w.Code, w.Body, tc.want.Body)
		}
		h := w.Header()
		for k, v := range map[string]string{"ETag": tc.want.ETag, "Content-Type": "application/json; charset=utf-8",
			"X-Served-From": "cache", "X-DB-Queries": "0", "Cache-Control": "public, max-age=5", "Vary": "X-Consistency-Token"} {
			if h.Get(k) != v {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, k, h.Get(k), v)
			}
		}
		w = do(r, request{method: "GET", path: tc.path, header: map[string]string{"If-None-Match": tc.want.ETag}})
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("GET %s with its ETag = %d %q, want 304 and no body", tc.path, w.Code, w.Body)
		}
	}
}
