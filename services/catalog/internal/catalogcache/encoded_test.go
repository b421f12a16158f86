package catalogcache_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
)

// roundTrips counts the memcached reads the cache makes.
type roundTrips struct {
	*fakeMemcache
	gets, multis atomic.Int64
}

func (m *roundTrips) Get(key string) (*memcache.Item, error) {
	m.gets.Add(1)
	return m.fakeMemcache.Get(key)
}

func (m *roundTrips) GetMulti(keys []string) (map[string]*memcache.Item, error) {
	m.multis.Add(1)
	return m.fakeMemcache.GetMulti(keys)
}

func (m *roundTrips) reset() { m.gets.Store(0); m.multis.Store(0) }

func TestAListHitReadsOnlyTheGenerationAndSendsTheStoredBytes(t *testing.T) {
	store := newStore(10)
	mc := &roundTrips{fakeMemcache: newFakeMemcache()}
	c, _ := newCache(store, mc)
	ctx := context.Background()
	q := catalog.ListQuery{Limit: 5}
	first, src, err := c.ListEncoded(ctx, q, catalog.ReadOpts{})
	if err != nil || src != catalog.FromReplica {
		t.Fatalf("first list: %s, %v", src, err)
	}
	page, _, _ := store.List(ctx, q, catalog.ReadOpts{})
	store.lists.Store(1) // the cache's load; not this test's own read
	if want := catalog.EncodePage(page); string(first.Body) != string(want.Body) || first.ETag != want.ETag {
		t.Fatalf("first list = %s %s, want %s %s", first.ETag, first.Body, want.ETag, want.Body)
	}
	for range 3 {
		mc.reset()
		e, src, err := c.ListEncoded(ctx, q, catalog.ReadOpts{})
		if err != nil || src != catalog.FromCache || string(e.Body) != string(first.Body) || e.ETag != first.ETag {
			t.Fatalf("cached list = %s from %s (%v), want the first body from the cache", e.Body, src, err)
		}
		if g, m := mc.gets.Load(), mc.multis.Load(); g != 1 || m != 0 {
			t.Errorf("a list hit made %d gets and %d multi-gets, want one get (the generation)", g, m)
		}
	}

	// A write moves the generation: the next read loads the new page once,
	// and the one after is again a single round trip.
	if _, _, err := c.Update(ctx, 2, catalog.Input{Name: "renamed", Attributes: []byte(`{}`)}, 0); err != nil {
		t.Fatal(err)
	}
	e, src, err := c.ListEncoded(ctx, q, catalog.ReadOpts{})
	if err != nil || src == catalog.FromCache || !json.Valid(e.Body) || string(e.Body) == string(first.Body) {
		t.Fatalf("list after a write = %s from %s (%v), want the new page from the store", e.Body, src, err)
	}
	mc.reset()
	if _, src, _ := c.ListEncoded(ctx, q, catalog.ReadOpts{}); src != catalog.FromCache || mc.gets.Load() != 1 {
		t.Errorf("list under the new generation: from %s with %d gets, want the cache with one", src, mc.gets.Load())
	}
	if n := store.lists.Load(); n != 2 {
		t.Errorf("store lists = %d, want 2 (one per generation)", n)
	}
}

func TestAProductHitIsTheStoredBytes(t *testing.T) {
	store := newStore(3)
	mc := newFakeMemcache()
	c, _ := newCache(store, mc)
	ctx := context.Background()
	if _, _, err := c.GetEncoded(ctx, 1, catalog.ReadOpts{}); err != nil {
		t.Fatal(err)
	}
	want := catalog.EncodeProduct(store.products[1])
	e, src, err := c.GetEncoded(ctx, 1, catalog.ReadOpts{})
	if err != nil || src != catalog.FromCache || string(e.Body) != string(want.Body) || e.ETag != `"p1-v1"` {
		t.Errorf("hit = %s %s from %s (%v), want %s %s from the cache", e.ETag, e.Body, src, err, want.ETag, want.Body)
	}

	// A value this code did not write is a miss, never an answer.
	mc.items[catalogcache.ProductKey(2)] = []byte(`{"id":2}`)
	if e, src, err := c.GetEncoded(ctx, 2, catalog.ReadOpts{}); err != nil || src != catalog.FromReplica || e.ETag != `"p2-v1"` {
		t.Errorf("a foreign value: %s from %s (%v), want the product from the store", e.ETag, src, err)
	}
}
