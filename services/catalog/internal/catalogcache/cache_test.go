package catalogcache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
)

// fakeMemcache is an in-memory memcached; broken makes every call fail.
type fakeMemcache struct {
	mu     sync.Mutex
	items  map[string][]byte
	broken bool
}

var errBroken = errors.New("memcache: connection refused")

func newFakeMemcache() *fakeMemcache { return &fakeMemcache{items: map[string][]byte{}} }

func (m *fakeMemcache) Get(key string) (*memcache.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return nil, errBroken
	}
	v, ok := m.items[key]
	if !ok {
		return nil, memcache.ErrCacheMiss
	}
	return &memcache.Item{Key: key, Value: v}, nil
}

func (m *fakeMemcache) GetMulti(keys []string) (map[string]*memcache.Item, error) {
	out := map[string]*memcache.Item{}
	for _, k := range keys {
		it, err := m.Get(k)
		if errors.Is(err, errBroken) {
			return out, err
		}
		if err == nil {
			out[k] = it
		}
	}
	return out, nil
}

func (m *fakeMemcache) Set(it *memcache.Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errBroken
	}
	m.items[it.Key] = it.Value
	return nil
}

func (m *fakeMemcache) Add(it *memcache.Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errBroken
	}
	if _, ok := m.items[it.Key]; ok {
		return memcache.ErrNotStored
	}
	m.items[it.Key] = it.Value
	return nil
}

func (m *fakeMemcache) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errBroken
	}
	delete(m.items, key)
	return nil
}

func (m *fakeMemcache) Increment(key string, delta uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return 0, errBroken
	}
	v, ok := m.items[key]
	if !ok {
		return 0, memcache.ErrCacheMiss
	}
	var n uint64
	fmt.Sscan(string(v), &n)
	n += delta
	m.items[key] = []byte(fmt.Sprint(n))
	return n, nil
}

// countingStore is a catalog.Store that counts its reads and can be slow,
// so concurrent misses overlap.
type countingStore struct {
	catalog.Store // nil: only the methods below are used
	mu            sync.Mutex
	products      map[int64]catalog.Product
	gets, lists   atomic.Int64
	delay         time.Duration
}

func (s *countingStore) Get(ctx context.Context, id int64, _ catalog.ReadOpts) (catalog.Product, catalog.Source, error) {
	s.gets.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[id]
	if !ok {
		return p, catalog.FromReplica, fmt.Errorf("%w: no product %d", problem.ErrNotFound, id)
	}
	return p, catalog.FromReplica, nil
}

func (s *countingStore) GetMany(ctx context.Context, ids []int64, _ catalog.ReadOpts) ([]catalog.Product, catalog.Source, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []catalog.Product
	for _, id := range ids {
		if p, ok := s.products[id]; ok {
			out = append(out, p)
		}
	}
	return out, catalog.FromReplica, nil
}

func (s *countingStore) List(ctx context.Context, q catalog.ListQuery, _ catalog.ReadOpts) (catalog.Page, catalog.Source, error) {
	s.lists.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	var page catalog.Page
	for id := q.AfterID + 1; len(page.Items) < q.Limit; id++ {
		p, ok := s.products[id]
		if !ok {
			break
		}
		page.Items = append(page.Items, p)
	}
	return page, catalog.FromReplica, nil
}

func (s *countingStore) Update(ctx context.Context, id int64, in catalog.Input, _ int64) (catalog.Product, catalog.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.products[id]
	p.Input, p.Version = in, p.Version+1
	s.products[id] = p
	return p, 1, nil
}

func (s *countingStore) Delete(ctx context.Context, id int64, _ int64) (catalog.LSN, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.products, id)
	return 1, nil
}

func newStore(n int) *countingStore {
	s := &countingStore{products: map[int64]catalog.Product{}}
	for i := int64(1); i <= int64(n); i++ {
		s.products[i] = catalog.Product{ID: i, Version: 1, Input: catalog.Input{Name: fmt.Sprint("p", i), Attributes: []byte(`{}`)}}
	}
	return s
}

func newCache(inner catalog.Store, mc catalogcache.Client) (*catalogcache.Cache, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	c := catalogcache.New(inner, mc, func(string) string { return "fake:11211" }, catalogcache.Config{
		ProductTTL: time.Minute, ListTTL: time.Minute, NegativeTTL: 5 * time.Second, LoadTimeout: 5 * time.Second,
		LocalPageTTL: time.Minute, LocalPageBytes: 1 << 20,
	}, attribute.String("scaleshop.instance", "test"), reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return c, reg
}

func TestAStampedeOnAColdKeyLoadsOnce(t *testing.T) {
	store := newStore(3)
	store.delay = 50 * time.Millisecond
	c, _ := newCache(store, newFakeMemcache())
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p, _, err := c.Get(context.Background(), 2, catalog.ReadOpts{}); err != nil || p.ID != 2 {
				t.Errorf("Get = %v, %v", p.ID, err)
			}
		}()
	}
	wg.Wait()
	if n := store.gets.Load(); n != 1 {
		t.Errorf("100 concurrent misses made %d loads, want 1", n)
	}
	if _, src, _ := c.Get(context.Background(), 2, catalog.ReadOpts{}); src != catalog.FromCache {
		t.Errorf("after the load, a read came from %s, want cache", src)
	}
}

func TestUnknownProductsAreCachedAsNotFound(t *testing.T) {
	store := newStore(1)
	c, _ := newCache(store, newFakeMemcache())
	for range 3 {
		if _, _, err := c.Get(context.Background(), 99, catalog.ReadOpts{}); !errors.Is(err, problem.ErrNotFound) {
			t.Fatalf("err = %v, want not found", err)
		}
	}
	if n := store.gets.Load(); n != 1 {
		t.Errorf("3 reads of an unknown id made %d loads, want 1 (negative caching)", n)
	}
}

func TestMemcachedDownIsNeverSeenByTheClient(t *testing.T) {
	store := newStore(5)
	mc := newFakeMemcache()
	mc.broken = true
	c, reg := newCache(store, mc)
	ctx := context.Background()
	if p, src, err := c.Get(ctx, 1, catalog.ReadOpts{}); err != nil || p.ID != 1 || src != catalog.FromReplica {
		t.Errorf("Get = %v from %s, %v", p.ID, src, err)
	}
	if page, _, err := c.List(ctx, catalog.ListQuery{Limit: 3}, catalog.ReadOpts{}); err != nil || len(page.Items) != 3 {
		t.Errorf("List = %d items, %v", len(page.Items), err)
	}
	if ps, _, err := c.GetMany(ctx, []int64{1, 2}, catalog.ReadOpts{}); err != nil || len(ps) != 2 {
		t.Errorf("GetMany = %d, %v", len(ps), err)
	}
	if _, _, err := c.Update(ctx, 1, catalog.Input{Name: "x"}, 0); err != nil {
		t.Errorf("Update = %v", err)
	}
	if n := errorsCounted(t, reg); n == 0 {
		t.Error("memcached errors were not counted")
	}
}

func errorsCounted(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "error" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func TestWritesRefreshTheProductAndInvalidateLists(t *testing.T) {
	store := newStore(5)
	c, _ := newCache(store, newFakeMemcache())
	ctx := context.Background()
	if _, _, err := c.Get(ctx, 1, catalog.ReadOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.List(ctx, catalog.ListQuery{Limit: 5}, catalog.ReadOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.List(ctx, catalog.ListQuery{Limit: 5}, catalog.ReadOpts{}); err != nil {
		t.Fatal(err)
	}
	if n := store.lists.Load(); n != 1 {
		t.Fatalf("two identical list reads made %d loads, want 1", n)
	}

	if _, _, err := c.Update(ctx, 1, catalog.Input{Name: "renamed", Attributes: []byte(`{}`)}, 0); err != nil {
		t.Fatal(err)
	}
	p, src, err := c.Get(ctx, 1, catalog.ReadOpts{})
	if err != nil || p.Name != "renamed" || src != catalog.FromCache {
		t.Errorf("after update: %q from %s (%v), want the new name from the cache", p.Name, src, err)
	}
	if _, _, err := c.List(ctx, catalog.ListQuery{Limit: 5}, catalog.ReadOpts{}); err != nil {
		t.Fatal(err)
	}
	if n := store.lists.Load(); n != 2 {
		t.Errorf("a list read after a write made %d loads in all, want 2 (the generation moved)", n)
	}

	if _, err := c.Delete(ctx, 2, 0); err != nil {
		t.Fatal(err)
	}
	gets := store.gets.Load()
	if _, _, err := c.Get(ctx, 2, catalog.ReadOpts{}); !errors.Is(err, problem.ErrNotFound) {
		t.Errorf("after delete: %v, want not found", err)
	}
	if store.gets.Load() != gets {
		t.Error("a deleted product was read from the store instead of its tombstone")
	}
}

func TestTokenAndNoCacheReadsBypassTheCache(t *testing.T) {
	store := newStore(1)
	c, _ := newCache(store, newFakeMemcache())
	ctx := context.Background()
	for _, o := range []catalog.ReadOpts{{}, {After: 5}, {NoCache: true}} {
		if _, _, err := c.Get(ctx, 1, o); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.gets.Load(); n != 3 {
		t.Errorf("loads = %d, want 3: the first fills, token and no-cache reads go to the store", n)
	}
}
