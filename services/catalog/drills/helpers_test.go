// Package drills breaks the real stack on purpose and checks that the
// catalog degrades as docs/catalog.md promises: replica paused or stopped, primary
// stopped, memcached nodes stopped, a stampede on a cold key, racing
// reservations. Each test leaves the stack running and healthy.
package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scaleshop/scaleshop/infra/scrape"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (r response) product(t *testing.T) catalog.Product {
	t.Helper()
	var p catalog.Product
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a product (%d): %s", r.status, r.body)
	}
	return p
}

func call(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start)}
}

func adminHeaders(extra ...string) []string {
	return append([]string{"X-User-Id", "drill", "X-User-Role", "admin"}, extra...)
}

// newProduct creates a product with its own sku and returns it and its
// consistency token.
func newProduct(t *testing.T, base string, stock int) (catalog.Product, string) {
	t.Helper()
	body := fmt.Sprintf(`{"sku":"DRILL-%d","name":"Drill item","category":"drills","price_cents":500,"currency":"USD","stock":%d,"attributes":{}}`,
		rand.Int64(), stock)
	r := call(t, "POST", base+"/api/products", body, adminHeaders()...)
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d: %s", r.status, r.body)
	}
	return r.product(t), r.header.Get("X-Consistency-Token")
}

func productBody(p catalog.Product, name string) string {
	in := p.Input
	in.Name = name
	b, _ := json.Marshal(in)
	return string(b)
}

// db connects as the superuser to the catalog database on component.
func db(t *testing.T, stack *stacktest.Stack, component string) *pgx.Conn {
	t.Helper()
	dsn := strings.Replace(stack.Endpoints.AdminDSNs[component], "/postgres?", "/catalog?", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", component, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// waitReplicaInReadPath waits until the replica streams from the primary
// and the catalog clone reads from it again: the state every drill leaves.
func waitReplicaInReadPath(t *testing.T, stack *stacktest.Stack, base string) {
	t.Helper()
	stacktest.Eventually(t, 60*time.Second, "replica streaming", func() error {
		conn, err := pgx.Connect(context.Background(), stack.Endpoints.AdminDSNs[topology.PGCatalogPrimary])
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d streaming replicas", n)
		}
		return nil
	})
	stacktest.Eventually(t, 30*time.Second, "reads back on the replica", func() error {
		r := call(t, "GET", base+"/api/products/1", "", "Cache-Control", "no-cache")
		if from := r.header.Get("X-Served-From"); r.status != 200 || from != "replica" {
			return fmt.Errorf("GET = %d from %q", r.status, from)
		}
		return nil
	})
}

// metric reads one unlabelled gauge or counter from a clone's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	v, ok := scrapeMetrics(t, base).Sum(name, nil)
	if !ok {
		t.Fatalf("%s/metrics has no %s", base, name)
	}
	return v
}

func scrapeMetrics(t *testing.T, base string) scrape.Families {
	t.Helper()
	families, err := scrape.Get(context.Background(), client, base)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

func stockOnPrimary(t *testing.T, conn *pgx.Conn, id int64) int64 {
	t.Helper()
	var stock int64
	if err := conn.QueryRow(context.Background(), `SELECT stock FROM products WHERE id = $1`, id).Scan(&stock); err != nil {
		t.Fatal(err)
	}
	return stock
}
