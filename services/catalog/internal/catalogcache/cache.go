// Package catalogcache is the memcached cache-aside decorator around a
// catalog.Store: reads look in memcached first and fill it from the store on
// a miss; writes go to the store and then refresh the cache.
//
// The rules, each visible in one place below:
//   - a miss loads once per key and process (singleflight), however many
//     requests wait for it;
//   - fills use Add, never Set, so a fill read from a lagging replica can
//     never overwrite what a writer stored after its commit;
//   - after a commit the writer stores the committed row (falling back to a
//     delete): a plain delete would let the next miss refill the old row
//     from a replica that has not replayed the write yet;
//   - a deleted or unknown product is cached as a tombstone for a short TTL
//     (negative caching), so a flood of 404s does not reach Postgres;
//   - values are the exact response bytes with their ETag, so a hit is
//     written to the client without a decode or an encode;
//   - list pages are whole bodies under a key made of a generation that
//     every admin write bumps (one increment invalidates every cached
//     page) and of the query; a page lives ListTTL, so stock changed by
//     reservations, which do not bump the generation, shows in lists at
//     most ListTTL (+10%) + LocalPageTTL late;
//   - a page under one generation never changes, so each process keeps
//     copies of the current generation's pages for LocalPageTTL: a list hit
//     reads only the generation from memcached;
//   - every TTL gets up to 10% jitter, so keys filled together do not
//     expire together;
//   - memcached errors and timeouts are counted and traced, never returned:
//     the store answers instead.
package catalogcache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// Client is the part of *memcache.Client the cache uses; tests fake it.
type Client interface {
	Get(key string) (*memcache.Item, error)
	GetMulti(keys []string) (map[string]*memcache.Item, error)
	Set(item *memcache.Item) error
	Add(item *memcache.Item) error
	Delete(key string) error
	Increment(key string, delta uint64) (uint64, error)
}

// Config sets the cache's TTLs.
type Config struct {
	ProductTTL  time.Duration
	ListTTL     time.Duration
	NegativeTTL time.Duration // how long "no such product" is remembered
	LoadTimeout time.Duration // bounds a shared load, whose callers may go away
	// LocalPageTTL is how long this process keeps its own copy of a page of
	// the current list generation (0: no copies); LocalPageBytes bounds them.
	LocalPageTTL   time.Duration
	LocalPageBytes int
}

// Cache implements catalog.Store in front of another Store.
type Cache struct {
	inner    catalog.Store
	mc       Client
	owner    func(key string) string
	cfg      Config
	group    singleflight.Group
	tracer   trace.Tracer
	instance attribute.KeyValue
	log      *slog.Logger
	ops      *prometheus.CounterVec
	pages    *pageCopies
}

var _ catalog.Store = (*Cache)(nil)

// New wraps inner. owner names the server of a key for spans (the
// selector's Owner); instance is the clone's span attribute.
func New(inner catalog.Store, mc Client, owner func(string) string, cfg Config,
	instance attribute.KeyValue, reg prometheus.Registerer, log *slog.Logger) *Cache {
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "catalog_cache_operations_total",
		Help: "memcached operations by operation and result (hit, miss, error, ok, not_stored); a get_multi counts per key.",
	}, []string{"op", "result"})
	reg.MustRegister(ops)
	return &Cache{inner: inner, mc: mc, owner: owner, cfg: cfg, instance: instance, log: log, ops: ops,
		pages:  newPageCopies(cfg.LocalPageTTL, cfg.LocalPageBytes),
		tracer: otel.Tracer("github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache")}
}

// Keys. The version prefix lets a change of encoding start afresh (v2:
// values hold the response bytes and their ETag; pages hold whole bodies).
const (
	prefix    = "catalog:v2:"
	genKey    = prefix + "listgen"
	tombstone = "-"
)

// ProductKey is the cache key of product id.
func ProductKey(id int64) string { return prefix + "p:" + strconv.FormatInt(id, 10) }

func pageKey(gen string, q catalog.ListQuery) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", q.Category, q.Q, q.Limit, q.AfterID)
	return prefix + "l:" + gen + ":" + strconv.FormatUint(h.Sum64(), 36)
}

// A cached value is the ETag, a newline, then the exact response body, so a
// hit is written to the client as it is. A tombstone is "-".
func frame(e catalog.Encoded) []byte {
	b := make([]byte, 0, len(e.ETag)+1+len(e.Body))
	b = append(b, e.ETag...)
	b = append(b, '\n')
	return append(b, e.Body...)
}

// unframe reads a cached value: found is false for a tombstone, ok false for
// a value this code did not write (treated as a miss).
func unframe(v []byte) (e catalog.Encoded, found, ok bool) {
	if string(v) == tombstone {
		return e, false, true
	}
	i := bytes.IndexByte(v, '\n')
	if i <= 0 {
		return e, false, false
	}
	return catalog.Encoded{ETag: string(v[:i]), Body: v[i+1:]}, true, true
}

// bypass says whether a read must skip the cache: the client asked for it,
// or it carries a consistency token, which cached data cannot prove it meets.
func bypass(o catalog.ReadOpts) bool { return o.NoCache || o.After > 0 }

// Get serves a product from memcached, or loads it once and fills.
func (c *Cache) Get(ctx context.Context, id int64, o catalog.ReadOpts) (catalog.Product, catalog.Source, error) {
	if bypass(o) {
		return c.inner.Get(ctx, id, o)
	}
	e, src, err := c.GetEncoded(ctx, id, o)
	if err != nil {
		return catalog.Product{}, src, err
	}
	var p catalog.Product
	if err := json.Unmarshal(e.Body, &p); err != nil {
		return p, src, fmt.Errorf("catalogcache: product %d: %w", id, err)
	}
	return p, src, nil
}

// GetEncoded is Get in wire form: a hit is the cached response bytes, with
// no decode or encode.
func (c *Cache) GetEncoded(ctx context.Context, id int64, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	if bypass(o) {
		p, src, err := c.inner.Get(ctx, id, o)
		if err != nil {
			return catalog.Encoded{}, src, err
		}
		return catalog.EncodeProduct(p), src, nil
	}
	key := ProductKey(id)
	if e, ok, err := c.cachedProduct(ctx, key, id); ok {
		return e, catalog.FromCache, err
	}
	return load(c, ctx, key, func(lctx context.Context) (catalog.Encoded, catalog.Source, error) {
		// Look again: this request may have missed just before another
		// one's load filled the key and left the flight.
		if e, ok, err := c.cachedProduct(lctx, key, id); ok {
			return e, catalog.FromCache, err
		}
		p, src, err := c.inner.Get(lctx, id, o)
		switch {
		case errors.Is(err, problem.ErrNotFound):
			c.add(lctx, key, []byte(tombstone), c.cfg.NegativeTTL)
			return catalog.Encoded{}, src, err
		case err != nil:
			return catalog.Encoded{}, src, err
		}
		e := catalog.EncodeProduct(p)
		c.add(lctx, key, frame(e), c.cfg.ProductTTL)
		return e, src, nil
	})
}

// load runs fn once per key however many requests miss it at once
// (singleflight); they all get its result. The shared load is detached from
// the leader's cancellation (its followers still want the answer) but keeps
// its values and span, and is bounded by LoadTimeout.
func load[T any](c *Cache, ctx context.Context, key string,
	fn func(context.Context) (T, catalog.Source, error)) (T, catalog.Source, error) {
	type loaded struct {
		v   T
		src catalog.Source
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
		defer cancel()
		x, src, err := fn(lctx)
		return loaded{x, src}, err
	})
	l, _ := v.(loaded)
	return l.v, l.src, err
}

// cachedProduct reads key; ok is false on a miss. A tombstone is a hit
// whose error is not found.
func (c *Cache) cachedProduct(ctx context.Context, key string, id int64) (catalog.Encoded, bool, error) {
	it, ok := c.get(ctx, key)
	if !ok {
		return catalog.Encoded{}, false, nil
	}
	e, found, ok := unframe(it.Value)
	switch {
	case !ok:
		return e, false, nil
	case !found:
		return e, true, notFound(id)
	}
	return e, true, nil
}

func notFound(id int64) error { return fmt.Errorf("%w: no product %d", problem.ErrNotFound, id) }

// GetMany reads every key with one GetMulti (one round trip per server) and
// loads only the missing ones, with one query.
func (c *Cache) GetMany(ctx context.Context, ids []int64, o catalog.ReadOpts) ([]catalog.Product, catalog.Source, error) {
	if bypass(o) {
		return c.inner.GetMany(ctx, ids, o)
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = ProductKey(id)
	}
	items := c.getMulti(ctx, keys)
	byID := make(map[int64]catalog.Product, len(ids))
	var missing []int64
	for i, id := range ids {
		it, ok := items[keys[i]]
		if !ok {
			missing = append(missing, id)
			continue
		}
		e, found, ok := unframe(it.Value)
		var p catalog.Product
		switch {
		case !ok:
			missing = append(missing, id)
		case !found:
		case json.Unmarshal(e.Body, &p) != nil:
			missing = append(missing, id)
		default:
			byID[id] = p
		}
	}
	src := catalog.FromCache
	if len(missing) > 0 {
		loaded, from, err := c.inner.GetMany(ctx, missing, o)
		if err != nil {
			return nil, from, err
		}
		src = from
		got := make(map[int64]bool, len(loaded))
		for _, p := range loaded {
			byID[p.ID], got[p.ID] = p, true
			c.add(ctx, ProductKey(p.ID), frame(catalog.EncodeProduct(p)), c.cfg.ProductTTL)
		}
		for _, id := range missing {
			if !got[id] {
				c.add(ctx, ProductKey(id), []byte(tombstone), c.cfg.NegativeTTL)
			}
		}
	}
	out := make([]catalog.Product, 0, len(byID))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
		}
	}
	return out, src, nil
}

// List serves a page from memcached, or loads it once and fills.
func (c *Cache) List(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Page, catalog.Source, error) {
	if bypass(o) {
		return c.inner.List(ctx, q, o)
	}
	e, src, err := c.ListEncoded(ctx, q, o)
	if err != nil {
		return catalog.Page{}, src, err
	}
	var page catalog.Page
	if err := json.Unmarshal(e.Body, &page); err != nil {
		return page, src, fmt.Errorf("catalogcache: page: %w", err)
	}
	return page, src, nil
}

// ListEncoded serves a page in wire form, with no decode or encode: the
// generation from memcached (a few bytes), then the page from this process's
// copies of the current generation's pages, else from memcached; a hit is
// one round trip. A miss loads the page once and fills both.
func (c *Cache) ListEncoded(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	if bypass(o) {
		return c.listFromStore(ctx, q, o)
	}
	gen, ok := c.generation(ctx)
	if !ok {
		return c.listFromStore(ctx, q, o)
	}
	key := pageKey(gen, q)
	if e, ok := c.pages.get(gen, key); ok {
		return e, catalog.FromCache, nil
	}
	if e, ok := c.cachedPage(ctx, key); ok {
		c.pages.put(gen, key, e)
		return e, catalog.FromCache, nil
	}
	return load(c, ctx, key, func(lctx context.Context) (catalog.Encoded, catalog.Source, error) {
		if e, ok := c.cachedPage(lctx, key); ok {
			c.pages.put(gen, key, e)
			return e, catalog.FromCache, nil
		}
		e, src, err := c.listFromStore(lctx, q, o)
		if err == nil {
			c.add(lctx, key, frame(e), c.cfg.ListTTL)
			c.pages.put(gen, key, e)
		}
		return e, src, err
	})
}

func (c *Cache) listFromStore(ctx context.Context, q catalog.ListQuery, o catalog.ReadOpts) (catalog.Encoded, catalog.Source, error) {
	page, src, err := c.inner.List(ctx, q, o)
	if err != nil {
		return catalog.Encoded{}, src, err
	}
	return catalog.EncodePage(page), src, nil
}

// cachedPage reads a page body; ok is false on a miss.
func (c *Cache) cachedPage(ctx context.Context, key string) (catalog.Encoded, bool) {
	it, ok := c.get(ctx, key)
	if !ok {
		return catalog.Encoded{}, false
	}
	e, found, ok := unframe(it.Value)
	return e, ok && found
}

// generation returns the current list generation, creating it when memcached
// lost it; ok is false when memcached cannot be used.
func (c *Cache) generation(ctx context.Context) (string, bool) {
	if it, ok := c.get(ctx, genKey); ok {
		return string(it.Value), true
	}
	// A fresh value that no earlier generation can have had.
	gen := strconv.FormatInt(time.Now().UnixNano(), 10)
	if c.add(ctx, genKey, []byte(gen), 0) {
		return gen, true
	}
	it, ok := c.get(ctx, genKey) // another clone created it first
	if !ok {
		return "", false
	}
	return string(it.Value), true
}

// Create writes through the store, then stores the new row and bumps the
// list generation.
func (c *Cache) Create(ctx context.Context, in catalog.Input) (catalog.Product, catalog.LSN, error) {
	return c.written(ctx)(c.inner.Create(ctx, in))
}

// Update writes through the store, then refreshes the row and the lists.
func (c *Cache) Update(ctx context.Context, id int64, in catalog.Input, ifVersion int64) (catalog.Product, catalog.LSN, error) {
	return c.written(ctx)(c.inner.Update(ctx, id, in, ifVersion))
}

// written refreshes a committed product and bumps the list generation.
func (c *Cache) written(ctx context.Context) func(catalog.Product, catalog.LSN, error) (catalog.Product, catalog.LSN, error) {
	return func(p catalog.Product, token catalog.LSN, err error) (catalog.Product, catalog.LSN, error) {
		if err == nil {
			c.refresh(ctx, p)
			c.bumpGeneration(ctx)
		}
		return p, token, err
	}
}

// Delete writes through the store, then leaves a tombstone and bumps the
// lists: the tombstone keeps a lagging replica from refilling the product.
func (c *Cache) Delete(ctx context.Context, id int64, ifVersion int64) (catalog.LSN, error) {
	token, err := c.inner.Delete(ctx, id, ifVersion)
	if err == nil {
		if !c.set(ctx, ProductKey(id), []byte(tombstone), c.cfg.NegativeTTL) {
			c.delete(ctx, ProductKey(id))
		}
		c.bumpGeneration(ctx)
	}
	return token, err
}

// Reserve refreshes the products whose stock changed. It does not bump the
// list generation (checkout traffic would empty the list cache): the stock
// a cached page shows may lag by up to the list TTL; reservations read the
// primary, so they stay exact.
func (c *Cache) Reserve(ctx context.Context, r catalog.ReservationRequest) (catalog.Reservation, []catalog.Product, error) {
	res, changed, err := c.inner.Reserve(ctx, r)
	if err == nil {
		c.refresh(ctx, changed...)
	}
	return res, changed, err
}

// Release refreshes the products whose stock came back.
func (c *Cache) Release(ctx context.Context, orderID string) (catalog.Reservation, []catalog.Product, error) {
	res, changed, err := c.inner.Release(ctx, orderID)
	if err == nil {
		c.refresh(ctx, changed...)
	}
	return res, changed, err
}

// refresh stores committed rows; if a store fails the key is deleted, so at
// worst the next read loads it again.
func (c *Cache) refresh(ctx context.Context, ps ...catalog.Product) {
	for _, p := range ps {
		if !c.set(ctx, ProductKey(p.ID), frame(catalog.EncodeProduct(p)), c.cfg.ProductTTL) {
			c.delete(ctx, ProductKey(p.ID))
		}
	}
}

func (c *Cache) bumpGeneration(ctx context.Context) {
	ctx, span := c.start(ctx, "memcached incr", genKey)
	defer span.End()
	if _, err := c.mc.Increment(genKey, 1); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		c.fail(ctx, span, "incr", err)
		return
	}
	c.ops.WithLabelValues("incr", "ok").Inc()
	// A missing generation needs no bump: the next list creates a new one.
}

// ttl adds up to 10% jitter and converts to memcached seconds.
func ttl(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	s := int32(d.Round(time.Second) / time.Second)
	return max(s, 1)
}
