package drills

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/scrape"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// env is one test's view of the stack: its own products and customers.
type env struct {
	t        *testing.T
	stack    *stacktest.Stack
	http     *http.Client
	name     string // unique prefix of this test's customers and SKUs
	products map[int64]int64
	mu       sync.Mutex
	accepted map[string]acceptedOrder // order id -> what was ordered
	// customerOf names the customer of a load's i-th order: 40 customers,
	// one in ten of them declined by the payment rule, unless a drill
	// targets a shard.
	customerOf func(i int) string
	started    time.Time
	// statusFrom is where each orders.status partition ended when the test
	// began: its own events come after, so a stack that has carried
	// millions of orders is not read from the beginning.
	statusFrom map[int]int64
}

type acceptedOrder struct {
	customer string
	lines    []orders.Line
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		t: t, stack: stacktest.Require(t),
		http:     &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		name:     fmt.Sprintf("%.12s-%x", strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), rand.Uint32()),
		products: map[int64]int64{}, accepted: map[string]acceptedOrder{},
	}
	e.customerOf = func(i int) string { return e.customer(i%40, i%10 == 0) }
	e.started = time.Now()
	e.statusFrom = e.statusEnds()
	return e
}

// statusEnds is where each orders.status partition's next event goes.
func (e *env) statusEnds() map[int]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kafkax.EndOffsets(ctx, e.stack.Endpoints.KafkaBrokers[0], topology.TopicOrdersStatus)
	if err != nil {
		e.t.Fatal(err)
	}
	return ends
}

func (e *env) connect(dsn string) *pgx.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	e.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// product creates a product of this test's own, so stock checks see no
// other test's orders.
func (e *env) product(stock int64, priceCents int64) int64 {
	e.t.Helper()
	body := fmt.Sprintf(`{"sku":"%s-%d","name":"drill product","description":"made by %s","category":"drill",
		"price_cents":%d,"currency":"USD","stock":%d,"attributes":{}}`, e.name, len(e.products), e.t.Name(), priceCents, stock)
	req, _ := http.NewRequest(http.MethodPost, e.stack.Endpoints.CatalogURLs[0]+"/api/products", strings.NewReader(body))
	req.Header.Set("X-User-Id", "drill-admin")
	req.Header.Set("X-User-Role", "admin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p struct{ ID int64 }
	if err := json.Unmarshal(raw, &p); err != nil || resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create product: %s %s (body %s)", resp.Status, raw, body)
	}
	e.products[p.ID] = stock
	return p.ID
}

// customer is the test's i-th customer; decline customers have every
// payment declined (the documented rule).
func (e *env) customer(i int, decline bool) string {
	if decline {
		return fmt.Sprintf("%s%s-%d", orders.DeclinePrefix, e.name, i)
	}
	return fmt.Sprintf("c-%s-%d", e.name, i)
}

// randomLines picks 1-2 of the test's products, 1-3 of each.
func (e *env) randomLines() []orders.Line {
	var ids []int64
	for id := range e.products {
		ids = append(ids, id)
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	n := 1 + rand.IntN(min(2, len(ids)))
	lines := make([]orders.Line, n)
	for i := range lines {
		lines[i] = orders.Line{ProductID: ids[i], Quantity: 1 + rand.IntN(3)}
	}
	return lines
}

// post sends one placement to base; it returns the status code and order id.
func (e *env) post(base, customer, key string, lines []orders.Line) (int, string, error) {
	b, _ := json.Marshal(map[string]any{"items": lines})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/orders", bytes.NewReader(b))
	req.Header.Set("X-User-Id", customer)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var o struct{ ID string }
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &o)
	return resp.StatusCode, o.ID, nil
}

// place places an order the way a careful client does: with an
// Idempotency-Key, retried on errors and 5xx, on the next clone in bases.
// It reports whether the order was accepted and how many tries it took.
func (e *env) place(bases []string, customer string, lines []orders.Line) (string, int, bool) {
	key := uuid.NewString()
	for try := range 20 {
		code, id, err := e.post(bases[(try+rand.IntN(len(bases)))%len(bases)], customer, key, lines)
		if err == nil && code == http.StatusAccepted {
			e.mu.Lock()
			e.accepted[id] = acceptedOrder{customer: customer, lines: lines}
			e.mu.Unlock()
			return id, try + 1, true
		}
		if err == nil && code < 500 {
			e.t.Errorf("POST /api/orders answered %d", code)
			return "", try + 1, false
		}
		time.Sleep(200 * time.Millisecond) // a client's backoff, not a wait for async work
	}
	return "", 20, false
}

// load places n orders from a pool of customers, concurrency at a time,
// calling between(i) before the i-th order (drills break things there); it
// stops early when between says so.
func (e *env) load(bases func() []string, n, concurrency int, between func(i int) (stop bool)) (retried int) {
	var next, retries atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if between != nil && between(i) {
					return
				}
				_, tries, ok := e.place(bases(), e.customerOf(i), e.randomLines())
				if !ok {
					e.t.Errorf("order %d was never accepted", i)
				}
				retries.Add(int64(tries - 1))
			}
		})
	}
	wg.Wait()
	return int(retries.Load())
}

func (e *env) ids() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.accepted))
	for id := range e.accepted {
		out = append(out, id)
	}
	return out
}

type finalRow struct {
	status       orders.Status
	reason       orders.Reason
	statusEvents int
	unpublished  int
}

// finals reads every accepted order straight from its shard, with how many
// orders.status outbox rows it has and how many are still unpublished.
func (e *env) finals(ctx context.Context) map[string]finalRow {
	e.t.Helper()
	byShard := map[int][]uuid.UUID{}
	for _, raw := range e.ids() {
		id, err := orders.ParseID(raw, topology.LogicalShards)
		if err != nil {
			e.t.Fatal(err)
		}
		byShard[id.Shard] = append(byShard[id.Shard], id.UUID)
	}
	out := map[string]finalRow{}
	for shard, ids := range byShard {
		conn, err := pgx.Connect(ctx, e.stack.Endpoints.OrdersShardDSNs[shard])
		if err != nil {
			e.t.Fatal(err)
		}
		// Events are matched to orders once per shard (a hash join), only
		// among the outbox rows written since the test began.
		rows, err := conn.Query(ctx, `WITH ev AS (
				SELECT convert_from(payload, 'UTF8')::jsonb->>'order_id' AS order_id, topic, published_at
				FROM outbox WHERE created_at >= $3)
			SELECT o.id, o.status, o.reason,
				count(ev.order_id) FILTER (WHERE ev.topic = 'orders.status'),
				count(ev.order_id) FILTER (WHERE ev.published_at IS NULL)
			FROM orders o LEFT JOIN ev ON ev.order_id = $2 || '-' || o.id::text
			WHERE o.id = ANY($1) GROUP BY o.id, o.status, o.reason`, ids, fmt.Sprint(shard), e.started.Add(-time.Minute))
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var r finalRow
			if err := rows.Scan(&id, &r.status, &r.reason, &r.statusEvents, &r.unpublished); err != nil {
				e.t.Fatal(err)
			}
			out[orders.ID{Shard: shard, UUID: id}.String()] = r
		}
		rows.Close()
		conn.Close(ctx)
	}
	return out
}

// waitFinal waits until every accepted order is final and all its events
// are published.
func (e *env) waitFinal(timeout time.Duration) map[string]finalRow {
	e.t.Helper()
	var last map[string]finalRow
	stacktest.Eventually(e.t, timeout, "every accepted order final and published", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		last = e.finals(ctx)
		if len(last) != len(e.ids()) {
			return fmt.Errorf("%d of %d accepted orders are in the shards", len(last), len(e.ids()))
		}
		pending, unpublished := 0, 0
		for _, r := range last {
			if r.status == orders.StatusPending {
				pending++
			}
			unpublished += r.unpublished
		}
		if pending > 0 || unpublished > 0 {
			return fmt.Errorf("%d pending, %d events unpublished", pending, unpublished)
		}
		return nil
	})
	return last
}

// assertExactlyOnce checks the drill's invariants: each order final with
// one status event (in the outbox and, deduplicated by outbox row, on the
// topic), stock = initial - confirmed quantities.
func (e *env) assertExactlyOnce(finals map[string]finalRow) {
	e.t.Helper()
	confirmed := map[int64]int64{}
	counts := map[string]int{}
	for id, r := range finals {
		counts[string(r.status)+"/"+string(r.reason)]++
		if r.statusEvents != 1 {
			e.t.Errorf("order %s has %d status events in its outbox, want 1", id, r.statusEvents)
		}
		want := orders.PaymentApproved(&orders.Order{CustomerID: e.accepted[id].customer})
		if r.status == orders.StatusConfirmed && !want || r.reason == orders.ReasonPaymentDeclined && want {
			e.t.Errorf("order %s of %s is %s/%s: the payment rule says approved=%v", id, e.accepted[id].customer, r.status, r.reason, want)
		}
		if r.status == orders.StatusConfirmed {
			for _, l := range e.accepted[id].lines {
				confirmed[l.ProductID] += int64(l.Quantity)
			}
		}
	}
	e.t.Logf("%d orders: %v", len(finals), counts)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	catalog := e.connect(strings.Replace(e.stack.Endpoints.AdminDSNs[topology.PGCatalogPrimary], "/postgres?", "/catalog?", 1))
	for id, initial := range e.products {
		var stock int64
		if err := catalog.QueryRow(ctx, `SELECT stock FROM products WHERE id = $1`, id).Scan(&stock); err != nil {
			e.t.Fatal(err)
		}
		if stock != initial-confirmed[id] {
			e.t.Errorf("product %d: stock %d, want %d - %d confirmed = %d", id, stock, initial, confirmed[id], initial-confirmed[id])
		}
	}
	e.assertTopicHasOneStatusPerOrder(ctx, finals)
}

// assertTopicHasOneStatusPerOrder reads orders.status and checks that each
// order's events there come from exactly one outbox row and agree with the
// database. A relay that dies between publishing and marking republishes a
// row (at-least-once); copies carry the same shard and outbox seq headers,
// which is what a consumer deduplicates on.
func (e *env) assertTopicHasOneStatusPerOrder(ctx context.Context, finals map[string]finalRow) {
	e.t.Helper()
	rows := map[string]map[string]bool{} // order id -> shard/seq
	ends := e.statusEnds()
	for p, last := range ends {
		if last <= e.statusFrom[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.stack.Endpoints.KafkaBrokers, Topic: topology.TopicOrdersStatus,
			Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
		_ = r.SetOffset(e.statusFrom[p])
		for {
			m, err := r.ReadMessage(ctx) // a partition reader without a group: nothing to commit
			if err != nil {
				r.Close()
				e.t.Fatalf("read orders.status partition %d: %v", p, err)
			}
			var ev orders.StatusEvent
			if json.Unmarshal(m.Value, &ev) == nil {
				if f, ours := finals[ev.OrderID]; ours {
					if ev.Status != f.status || ev.Reason != f.reason {
						e.t.Errorf("order %s: status event says %s/%s, database %s/%s", ev.OrderID, ev.Status, ev.Reason, f.status, f.reason)
					}
					if rows[ev.OrderID] == nil {
						rows[ev.OrderID] = map[string]bool{}
					}
					rows[ev.OrderID][header(m, "scaleshop-shard")+"/"+header(m, "scaleshop-outbox-seq")] = true
				}
			}
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	for id := range finals {
		if n := len(rows[id]); n != 1 {
			e.t.Errorf("order %s: %d distinct status events on %s, want 1", id, n, topology.TopicOrdersStatus)
		}
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// metric sums a counter or gauge over the given services' /metrics; a
// clone that does not answer (killed by the drill) adds nothing.
func metric(t *testing.T, urls []string, name string, labels map[string]string) float64 {
	t.Helper()
	total := 0.0
	for _, base := range urls {
		families, err := scrape.Get(context.Background(), http.DefaultClient, base)
		if _, unreachable := errors.AsType[*url.Error](err); unreachable {
			continue // a killed clone
		}
		if err != nil {
			t.Fatal(err)
		}
		v, _ := families.Sum(name, labels)
		total += v
	}
	return total
}

// component names the stack component listening at base.
func (e *env) component(base string) string {
	for _, c := range e.stack.Components {
		if strings.HasSuffix(base, fmt.Sprintf(":%d", c.Ports["http"])) {
			return c.Name
		}
	}
	e.t.Fatalf("no component at %s", base)
	return ""
}
