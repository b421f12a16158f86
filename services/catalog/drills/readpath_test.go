package drills

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
)

func TestReadYourWritesWhileReplayIsPaused(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	waitReplicaInReadPath(t, stack, base)
	p, _ := newProduct(t, base, 10)
	stacktest.Eventually(t, 10*time.Second, "new product on the replica", func() error {
		r := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", "Cache-Control", "no-cache")
		if r.status != 200 || r.header.Get("X-Served-From") != "replica" {
			return errStatus(r)
		}
		return nil
	})

	replica := db(t, stack, topology.PGCatalogReplica)
	if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_resume()`); err != nil {
				t.Errorf("resume replay: %v", err)
			}
		}
	}
	t.Cleanup(func() { resume(); waitReplicaInReadPath(t, stack, base) })

	w := call(t, "PUT", base+"/api/products/"+itoa(p.ID), productBody(p, "renamed while paused"),
		adminHeaders("If-Match", p.ETag())...)
	if w.status != http.StatusOK {
		t.Fatalf("PUT = %d: %s", w.status, w.body)
	}
	token := w.header.Get("X-Consistency-Token")
	if token == "" {
		t.Fatal("a write returned no X-Consistency-Token")
	}

	// The writer, carrying its token, reads its write at once.
	mine := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", "X-Consistency-Token", token)
	if got := mine.product(t); got.Name != "renamed while paused" {
		t.Errorf("the writer read %q with its token (from %s), want its own write", got.Name, mine.header.Get("X-Served-From"))
	}
	// An anonymous database read, still within the lag bound, goes to the
	// paused replica and sees the old row: the price of replica reads.
	anon := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", "Cache-Control", "no-cache")
	if from := anon.header.Get("X-Served-From"); from == "replica" {
		if got := anon.product(t); got.Name != p.Name {
			t.Errorf("the paused replica served %q, want the old %q", got.Name, p.Name)
		}
	} else {
		t.Errorf("an anonymous read right after the write came from %q, want the replica (lag bound 2s)", from)
	}

	// A product created while the replica lags is not "not found": the
	// replica's absence is checked on the primary, because callers act on
	// it (the orders API would reject an order for it). Both reads skip
	// memcached, which the create filled.
	fresh, _ := newProduct(t, base, 1)
	one := call(t, "GET", base+"/api/products/"+itoa(fresh.ID), "", "Cache-Control", "no-cache")
	if one.status != http.StatusOK || one.header.Get("X-Served-From") != "primary" {
		t.Errorf("a product created while replay is paused: GET = %d from %q, want 200 from the primary", one.status, one.header.Get("X-Served-From"))
	}
	many := call(t, "GET", base+"/internal/products?ids="+itoa(p.ID)+","+itoa(fresh.ID), "", "Cache-Control", "no-cache")
	if many.status != http.StatusOK || !strings.Contains(string(many.body), `"id":`+itoa(fresh.ID)+`,`) || !strings.Contains(string(many.body), `"id":`+itoa(p.ID)+`,`) {
		t.Errorf("/internal/products with a product created while replay is paused = %d %s, want both products", many.status, many.body)
	}

	// Past the lag bound the replica leaves the read path: reads are fresh
	// again, from the primary, and the lag metrics show why.
	stacktest.Eventually(t, 15*time.Second, "lagging replica out of the read path", func() error {
		r := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", "Cache-Control", "no-cache")
		if r.header.Get("X-Served-From") != "primary" || r.product(t).Name != "renamed while paused" {
			return errStatus(r)
		}
		return nil
	})
	if b, s := metric(t, base, "catalog_replica_lag_bytes"), metric(t, base, "catalog_replica_lag_seconds"); b <= 0 || s < 2 {
		t.Errorf("lag metrics while paused: %v bytes, %v s; want > 0 bytes and >= 2 s", b, s)
	}
	if v := metric(t, base, "catalog_replica_in_read_path"); v != 0 {
		t.Errorf("catalog_replica_in_read_path = %v while lagging, want 0", v)
	}

	resume()
	waitReplicaInReadPath(t, stack, base)
	for _, h := range [][]string{{"X-Consistency-Token", token}, {"Cache-Control", "no-cache"}} {
		if got := call(t, "GET", base+"/api/products/"+itoa(p.ID), "", h...).product(t); got.Name != "renamed while paused" {
			t.Errorf("after resume, read with %s sees %q", h[0], got.Name)
		}
	}
}

func TestReplicaStoppedReadsSucceed(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	waitReplicaInReadPath(t, stack, base)
	stack.Restart(t, topology.PGCatalogReplica)
	t.Cleanup(func() { waitReplicaInReadPath(t, stack, base) })

	stack.Stop(t, topology.PGCatalogReplica)
	for i := range 20 {
		r := call(t, "GET", base+"/api/products/"+itoa(int64(100+i)), "", "Cache-Control", "no-cache")
		if r.status != 200 || r.header.Get("X-Served-From") != "primary" {
			t.Fatalf("read %d with the replica down = %d from %q: %s", i, r.status, r.header.Get("X-Served-From"), r.body)
		}
	}
	if r := call(t, "GET", base+"/readyz", ""); r.status != 200 {
		t.Errorf("readyz with the replica down = %d: %s", r.status, r.body)
	}
	stack.Start(t, topology.PGCatalogReplica)
}

func TestPrimaryStoppedReadsWorkAndWritesFailFast(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.CatalogURLs[0]
	waitReplicaInReadPath(t, stack, base)
	p, _ := newProduct(t, base, 1)
	stack.Restart(t, topology.PGCatalogPrimary)
	t.Cleanup(func() { waitReplicaInReadPath(t, stack, base) })

	stack.Stop(t, topology.PGCatalogPrimary)
	for i := range 5 {
		w := call(t, "POST", base+"/api/products", `{"sku":"DOWN-`+itoa(int64(i))+`","name":"n","category":"c","price_cents":1,"currency":"USD","stock":1}`, adminHeaders()...)
		if w.status != http.StatusServiceUnavailable || w.took > 100*time.Millisecond {
			t.Errorf("write %d with the primary down = %d in %v, want 503 within 100ms: %s", i, w.status, w.took, w.body)
		}
		r := call(t, "GET", base+"/api/products/"+itoa(p.ID+int64(i)), "", "Cache-Control", "no-cache")
		if r.status != 200 && r.status != 404 {
			t.Errorf("read %d with the primary down = %d: %s", i, r.status, r.body)
		}
		for _, path := range []string{"/api/products/1", "/api/products?limit=5", "/internal/products?ids=1,2"} {
			if r := call(t, "GET", base+path, ""); r.status != 200 {
				t.Errorf("GET %s with the primary down = %d: %s", path, r.status, r.body)
			}
		}
	}
	if r := call(t, "GET", base+"/readyz", ""); r.status != 200 {
		t.Errorf("readyz with the primary down = %d: reads still work, so the clone is ready", r.status)
	}
	stack.Start(t, topology.PGCatalogPrimary)
	stacktest.Eventually(t, 30*time.Second, "writes accepted again", func() error {
		w := call(t, "PUT", base+"/api/products/"+itoa(p.ID), productBody(p, "after the outage"), adminHeaders()...)
		if w.status != 200 {
			return errStatus(w)
		}
		return nil
	})
}
