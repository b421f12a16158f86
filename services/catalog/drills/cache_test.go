package drills

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func errStatus(r response) error {
	return fmt.Errorf("status %d from %q: %.200s", r.status, r.header.Get("X-Served-From"), r.body)
}

func TestOneMemcachedNodeDownLosesOnlyItsShare(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	sel, err := catalogcache.NewRendezvous(stack.Endpoints.MemcachedServers...)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 40)
	for i := range ids {
		ids[i] = int64(9000 + i)
		// A read fills the key. A fill can fail on a loaded machine or
		// right after an earlier drill restarted the node (counted, never
		// surfaced), so it may take another read.
		stacktest.Eventually(t, 5*time.Second, "product "+itoa(ids[i])+" cached", func() error {
			if r := call(t, "GET", base+"/api/products/"+itoa(ids[i]), ""); r.header.Get("X-Served-From") != "cache" {
				return errStatus(r)
			}
			return nil
		})
	}
	stack.Restart(t, topology.Memcached1)
	stack.Stop(t, topology.Memcached1)
	lost := stack.Endpoints.MemcachedServers[0]
	var hits, misses int
	for _, id := range ids {
		r := call(t, "GET", base+"/api/products/"+itoa(id), "")
		if r.status != 200 {
			t.Fatalf("GET %d with %s down = %d: %s", id, lost, r.status, r.body)
		}
		onLost := sel.Owner(catalogcache.ProductKey(id)) == lost
		fromCache := r.header.Get("X-Served-From") == "cache"
		if onLost == fromCache {
			t.Errorf("product %d (key on %s) served from %s", id, sel.Owner(catalogcache.ProductKey(id)), r.header.Get("X-Served-From"))
		}
		if fromCache {
			hits++
		} else {
			misses++
		}
	}
	t.Logf("with %s down: %d hits, %d misses of %d", lost, hits, misses, len(ids))
	if hits == 0 || misses == 0 {
		t.Errorf("hits %d, misses %d: both nodes should own some of 40 keys", hits, misses)
	}
	stack.Start(t, topology.Memcached1)
}

func TestBothMemcachedNodesDownReadsAndWritesSucceed(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	stack.Restart(t, topology.Memcached1)
	stack.Restart(t, topology.Memcached2)
	stack.Stop(t, topology.Memcached1)
	stack.Stop(t, topology.Memcached2)
	for _, path := range []string{"/api/products/7", "/api/products?category=books&limit=10", "/internal/products?ids=1,2,3", "/api/products/99999999"} {
		r := call(t, "GET", base+path, "")
		if r.status >= 500 {
			t.Errorf("GET %s with memcached down = %d: %s", path, r.status, r.body)
		}
		if r.header.Get("X-Served-From") == "cache" {
			t.Errorf("GET %s claims a cache hit with memcached down", path)
		}
	}
	p, _ := newProduct(t, base, 3)
	if w := call(t, "PUT", base+"/api/products/"+itoa(p.ID), productBody(p, "no cache"), adminHeaders()...); w.status != 200 {
		t.Errorf("PUT with memcached down = %d: %s", w.status, w.body)
	}
	stack.Start(t, topology.Memcached1)
	stack.Start(t, topology.Memcached2)
}

func TestAHundredConcurrentGetsOfAColdKeyMakeOneQuery(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	sel, err := catalogcache.NewRendezvous(stack.Endpoints.MemcachedServers...)
	if err != nil {
		t.Fatal(err)
	}
	// A memcached call that fails under a loaded machine's timeouts leaves
	// the key cold for the requests after the flight, and each of them then
	// reads Postgres, as the design wants (the cache is never required). So
	// a stampede during which the catalog counted a memcached error is run
	// again on a new key; one without errors must make exactly one query.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		errorsBefore := cacheErrors(t, base)
		queries := coldKeyStampede(t, sel, base)
		cacheFailed := cacheErrors(t, base) - errorsBefore
		if queries == 1 {
			return
		}
		if cacheFailed == 0 || attempt == attempts {
			t.Fatalf("100 concurrent gets of a cold key made %d database queries, want 1 (memcached errors meanwhile: %v; attempt %d)",
				queries, cacheFailed, attempt)
		}
		t.Logf("attempt %d: %d queries while memcached failed %v times; again on a new key", attempt, queries, cacheFailed)
	}
}

// coldKeyStampede creates a product, makes its key cold, sends 100
// concurrent gets of it and returns the database queries they made.
func coldKeyStampede(t *testing.T, sel *catalogcache.Rendezvous, base string) int {
	p, _ := newProduct(t, base, 5)
	// The create stored the product in the cache; wait until the replica
	// has it (a cold read must find it there in one query; one that lags
	// would send the read on to the primary, a second query), then make the
	// key cold.
	stacktest.Eventually(t, 10*time.Second, "product on the replica", func() error {
		r := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", "Cache-Control", "no-cache")
		if r.status != 200 || r.header.Get("X-Served-From") != "replica" {
			return errStatus(r)
		}
		return nil
	})
	// Already absent is as cold as it gets: under load the write-through
	// after the create may have timed out (counted, never surfaced).
	if err := memcache.NewFromSelector(sel).Delete(catalogcache.ProductKey(p.ID)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatal(err)
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		queries int
		bad     []string
	)
	start := make(chan struct{})
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(base + "/api/products/" + itoa(p.ID))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				bad = append(bad, resp.Status)
			}
			n, _ := strconv.Atoi(resp.Header.Get("X-DB-Queries"))
			queries += n
		}()
	}
	close(start)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("failed requests: %v", bad)
	}
	return queries
}

// cacheErrors is the number of memcached calls the catalog at base has
// counted as failed, every operation together.
func cacheErrors(t *testing.T, base string) float64 {
	t.Helper()
	n, _ := scrapeMetrics(t, base).Sum("catalog_cache_operations_total", map[string]string{"result": "error"})
	return n
}
