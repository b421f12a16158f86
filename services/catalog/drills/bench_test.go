package drills

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// BenchmarkReadPath compares, in one run and through the same target (the
// gateway, or CATALOG_BENCH_TARGET=direct for the clones' own ports):
// product by id with a warm cache vs without the server cache, a list page
// cached vs uncached, and the catalog's bare /healthz. "Uncached" sends
// Cache-Control: no-cache, which makes the catalog skip memcached for that
// read: the same database work as CATALOG_CACHE_ENABLED=false, without
// restarting the clones. Run:
//
//	SCALESHOP_STACK=.../stack.json go test -run '^$' -bench ReadPath -benchtime 5s ./services/catalog/drills
func BenchmarkReadPath(b *testing.B) {
	stack := stacktest.Require(b)
	targets := []string{stack.Endpoints.GatewayURL}
	if os.Getenv("CATALOG_BENCH_TARGET") == "direct" {
		targets = stack.Endpoints.CatalogURLs
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(b *testing.B, url string, header ...string) {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("GET %s = %s", url, resp.Status)
		}
	}
	cases := []struct {
		name   string
		path   func(r *rand.Rand) string
		header []string
	}{
		{"healthz", func(*rand.Rand) string { return "/healthz" }, nil},
		{"product/cached", func(r *rand.Rand) string { return fmt.Sprintf("/api/products/%d", 1+r.IntN(1000)) }, nil},
		{"product/uncached", func(r *rand.Rand) string { return fmt.Sprintf("/api/products/%d", 1+r.IntN(1000)) }, []string{"Cache-Control", "no-cache"}},
		{"list/cached", func(r *rand.Rand) string {
			return "/api/products?limit=20&category=" + categories[r.IntN(len(categories))]
		}, nil},
		{"list/uncached", func(r *rand.Rand) string {
			return "/api/products?limit=20&category=" + categories[r.IntN(len(categories))]
		}, []string{"Cache-Control", "no-cache"}},
	}
	// Warm the cache for the cached cases.
	for id := 1; id <= 1000; id++ {
		get(b, fmt.Sprintf("%s/api/products/%d", targets[0], id))
	}
	for _, c := range categories {
		get(b, targets[0]+"/api/products?limit=20&category="+c)
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(8) // 8 × GOMAXPROCS concurrent requests
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 1))
				i := 0
				for pb.Next() {
					get(b, targets[i%len(targets)]+tc.path(r), tc.header...)
					i++
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

var categories = []string{"books", "electronics", "garden", "kitchen", "toys", "sports", "music", "movies", "games", "tools",
	"beauty", "health", "automotive", "office", "pets", "baby", "grocery", "jewelry", "shoes", "outdoor"}
