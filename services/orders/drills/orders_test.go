package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/segmentio/kafka-go"
)

func TestRacingPostsWithOneIdempotencyKeyMakeOneOrder(t *testing.T) {
	e := newEnv(t)
	p := e.product(100, 500)
	customer := e.customer(0, false)
	lines := []orders.Line{{ProductID: p, Quantity: 2}}
	urls := e.stack.Endpoints.OrdersURLs
	const racers = 12
	codes, ids := make([]int, racers), make([]string, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			var err error
			codes[i], ids[i], err = e.post(urls[i%len(urls)], customer, "race-key", lines) // both clones
			if err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range racers {
		if codes[i] != http.StatusAccepted || ids[i] != ids[0] {
			t.Fatalf("racer %d: %d %s; racer 0: %d %s", i, codes[i], ids[i], codes[0], ids[0])
		}
	}
	if code, _, _ := e.post(urls[0], customer, "race-key", []orders.Line{{ProductID: p, Quantity: 3}}); code != http.StatusUnprocessableEntity {
		t.Fatalf("the key with another body: %d, want 422", code)
	}
	id, _ := orders.ParseID(ids[0], topology.LogicalShards)
	conn := e.connect(e.stack.Endpoints.OrdersShardDSNs[id.Shard])
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE customer_id = $1`, customer).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d orders in the shard for %s (%v), want 1", n, customer, err)
	}
	e.accepted[ids[0]] = acceptedOrder{customer: customer, lines: lines}
	e.assertExactlyOnce(e.waitFinal(30 * time.Second))
}

func TestTheSameMessageDeliveredTwiceIsAppliedOnce(t *testing.T) {
	e := newEnv(t)
	p := e.product(50, 700)
	urls := e.stack.Endpoints.OrdersURLs
	var placed []kafka.Message
	for i, decline := range []bool{false, true} {
		customer := e.customer(i, decline)
		id, _, ok := e.place(urls, customer, []orders.Line{{ProductID: p, Quantity: 3}})
		if !ok {
			t.FailNow()
		}
		// The orders.placed event exactly as the relay publishes it, from
		// the outbox row the placement wrote.
		oid, _ := orders.ParseID(id, topology.LogicalShards)
		conn := e.connect(e.stack.Endpoints.OrdersShardDSNs[oid.Shard])
		var payload []byte
		if err := conn.QueryRow(context.Background(), `SELECT payload FROM outbox WHERE topic = $1
			AND convert_from(payload, 'UTF8')::jsonb->>'order_id' = $2`, topology.TopicOrdersPlaced, id).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		placed = append(placed, kafka.Message{Key: []byte(customer), Value: payload})
	}
	workers := e.stack.Endpoints.WorkerURLs
	before := metric(t, workers, "orders_worker_messages_total", map[string]string{"outcome": "duplicate"})
	w := kafkax.NewWriter(e.stack.Endpoints.KafkaBrokers, topology.TopicOrdersPlaced)
	defer w.Close()
	// Two extra copies each: likely while the first is in flight, surely
	// after it for the second.
	if err := w.WriteMessages(context.Background(), placed...); err != nil {
		t.Fatal(err)
	}
	e.waitFinal(30 * time.Second)
	if err := w.WriteMessages(context.Background(), placed...); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 30*time.Second, "the workers saw the copies", func() error {
		if got := metric(t, workers, "orders_worker_messages_total", map[string]string{"outcome": "duplicate"}) - before; got < 4 {
			return fmt.Errorf("%v duplicates handled so far", got)
		}
		return nil
	})
	e.assertExactlyOnce(e.waitFinal(30 * time.Second))
}

func TestACustomerCannotReadAnotherCustomersOrderThroughTheGateway(t *testing.T) {
	e := newEnv(t)
	p := e.product(10, 100)
	gw := e.stack.Endpoints.GatewayURL
	token := func(customer string) string {
		resp, err := http.Post(gw+"/api/auth/dev-token", "application/json",
			strings.NewReader(fmt.Sprintf(`{"customer_id":%q,"role":"customer"}`, customer)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct{ Token string }
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
			t.Fatalf("dev token: %s %v", resp.Status, err)
		}
		return tok.Token
	}
	call := func(method, path, tok, body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(method, gw+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	alice, bob := token("alice-"+e.name), token("bob-"+e.name)
	resp, o := call("POST", "/api/orders", alice, fmt.Sprintf(`{"items":[{"product_id":%d,"quantity":1}]}`, p))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST through the gateway: %s %v", resp.Status, o)
	}
	loc := resp.Header.Get("Location")
	if r, got := call("GET", loc+"?wait=5s", alice, ""); r.StatusCode != http.StatusOK || got["status"] == "pending" {
		t.Fatalf("the owner reads %s: %s %v (want it final within the long poll)", loc, r.Status, got)
	}
	if r, got := call("GET", loc, bob, ""); r.StatusCode != http.StatusNotFound {
		t.Fatalf("another customer reads %s: %s %v, want 404", loc, r.Status, got)
	}
	if r, _ := call("GET", "/api/orders", bob, ""); r.StatusCode != http.StatusOK {
		t.Fatalf("bob's own list: %s", r.Status)
	}
}

type listPage struct {
	Items []struct {
		ID         string    `json:"id"`
		CustomerID string    `json:"customer_id"`
		CreatedAt  time.Time `json:"created_at"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (e *env) list(base, user, role, query string) listPage {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/orders?"+query, nil)
	req.Header.Set("X-User-Id", user)
	if role != "" {
		req.Header.Set("X-User-Role", role)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var page listPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /api/orders?%s: %s %v", query, resp.Status, err)
	}
	return page
}

// TestListingsPageWithoutGapsOrRepeats pages a customer's list (one shard)
// and the admin's scatter-gather list (every shard) with small pages.
func TestListingsPageWithoutGapsOrRepeats(t *testing.T) {
	e := newEnv(t)
	p := e.product(1000, 100)
	base := e.stack.Endpoints.OrdersURLs[0]
	mine := map[string]bool{}
	shards := map[int]bool{}
	for i := range 16 { // 8 customers, so several shards
		id, _, ok := e.place(e.stack.Endpoints.OrdersURLs, e.customer(i%8, false), []orders.Line{{ProductID: p, Quantity: 1}})
		if !ok {
			t.FailNow()
		}
		mine[id] = true
		oid, _ := orders.ParseID(id, topology.LogicalShards)
		shards[oid.Shard] = true
	}
	if len(shards) < 3 {
		t.Fatalf("the test's orders landed on %d shards; the scatter-gather check needs several", len(shards))
	}

	own := map[string]int{}
	cursor := ""
	for {
		page := e.list(base, e.customer(0, false), "", "limit=1&cursor="+cursor)
		for _, o := range page.Items {
			own[o.ID]++
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(own) != 2 {
		t.Fatalf("customer 0's list has %d orders, want its 2: %v", len(own), own)
	}

	seen := map[string]int{}
	var prev *time.Time
	cursor = ""
	for found := 0; found < len(mine); {
		page := e.list(base, "root", "admin", "scope=all&limit=5&cursor="+cursor)
		for _, o := range page.Items {
			if prev != nil && o.CreatedAt.After(*prev) {
				t.Fatalf("admin list out of order: %s after %s", o.CreatedAt, *prev)
			}
			at := o.CreatedAt
			prev = &at
			if seen[o.ID]++; seen[o.ID] > 1 {
				t.Fatalf("order %s listed twice", o.ID)
			}
			if mine[o.ID] {
				found++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			if found < len(mine) {
				t.Fatalf("the admin list ended with %d of the test's %d orders", found, len(mine))
			}
			break
		}
	}
}
