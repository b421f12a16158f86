package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

func TestFloorServesTheSourcesBytes(t *testing.T) {
	source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/api/products/")
		w.Header().Set("ETag", `W/"p-`+id+`"`)
		_, _ = w.Write([]byte(`{"id":` + id + `}`))
	}))
	defer source.Close()

	store, err := loadMemoryStore(context.Background(), source.URL, 3)
	if err != nil {
		t.Fatal(err)
	}
	e, src, err := store.GetEncoded(context.Background(), 2, catalog.ReadOpts{})
	if err != nil || string(e.Body) != `{"id":2}` || e.ETag != `W/"p-2"` || src != catalog.FromCache {
		t.Fatalf("product 2 = %q %q from %s, %v; want the source's body and ETag, from the cache", e.Body, e.ETag, src, err)
	}
	if _, _, err := store.GetEncoded(context.Background(), 4, catalog.ReadOpts{}); err == nil {
		t.Fatal("product 4 was never loaded, yet it was served")
	}
}

func TestFloorRefusesASourceThatFails(t *testing.T) {
	source := httptest.NewServer(http.NotFoundHandler())
	defer source.Close()
	if _, err := loadMemoryStore(context.Background(), source.URL, 1); err == nil {
		t.Fatal("a source answering 404 was accepted")
	}
}

func TestParseFloorSpec(t *testing.T) {
	if src, n, err := parseFloorSpec("http://127.0.0.1:1 1000"); err != nil || src != "http://127.0.0.1:1" || n != 1000 {
		t.Fatalf("got %q %d %v", src, n, err)
	}
	for _, bad := range []string{"", "http://x", "http://x zero", "http://x 0", " 5"} {
		if _, _, err := parseFloorSpec(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
