package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// pending counts this test's accepted orders that are not final yet.
func (e *env) pending() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	byShard := map[int][]uuid.UUID{}
	for _, raw := range e.ids() {
		id, _ := orders.ParseID(raw, topology.LogicalShards)
		byShard[id.Shard] = append(byShard[id.Shard], id.UUID)
	}
	total := 0
	for shard, ids := range byShard {
		conn, err := pgx.Connect(ctx, e.stack.Endpoints.OrdersShardDSNs[shard])
		if err != nil {
			e.t.Fatal(err)
		}
		var n int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'pending'`, ids).Scan(&n)
		conn.Close(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		total += n
	}
	return total
}

// newDrill takes the stack exclusively (other packages' tests wait), makes
// products with stock, and makes sure broken, when named, runs again after
// the test whatever happens.
func newDrill(t *testing.T, products int, stock int64, broken string) *env {
	e := newEnv(t)
	e.stack.Exclusive(t)
	for i := range products {
		e.product(stock, int64(1000+100*i))
	}
	if broken != "" {
		e.stack.Restart(t, broken)
	}
	return e
}

// TestDrillWorkerKilledMidStream: kill -9 one of the two workers while
// hundreds of orders are in flight. Its partitions stall for the session
// timeout, move to the other worker, which resumes from the committed
// offsets; messages processed but not committed are redelivered and find
// their orders already final.
func TestDrillWorkerKilledMidStream(t *testing.T) {
	e := newDrill(t, 3, 500, "worker-1")
	urls := func() []string { return e.stack.Endpoints.OrdersURLs }
	workers := []string{"worker-1", "worker-2"}
	// The backlog is made, not raced for: both workers stop while the
	// orders are accepted, and those wait in Kafka. Racing placements
	// against small workers stopped making one once an order got cheap
	// enough that 0.1-core workers kept up with 32 placers (CI, 4 Dec).
	for _, w := range workers {
		e.stack.Stop(t, w)
		t.Cleanup(func() { e.stack.StartWith(t, w, stackcontrol.Options{}) })
	}
	const backlog, after = 500, 200
	retries := e.load(urls, backlog, 32, nil)
	// Small workers, so that deciding the backlog takes seconds and the
	// kill lands in the middle of it.
	for _, w := range workers {
		e.stack.StartWith(t, w, stackcontrol.Options{CPUs: "0.1"})
	}
	stacktest.Eventually(t, 2*time.Minute, "the workers deciding the backlog", func() error {
		if n := e.pending(); n > backlog-50 {
			return fmt.Errorf("%d of %d orders still pending", n, backlog)
		}
		return nil
	})
	e.stack.Kill(t, "worker-1")
	killedAt := time.Now()
	inFlight := e.pending()
	if inFlight == 0 {
		t.Fatalf("the workers had decided all %d orders before the kill: nothing was in flight", backlog)
	}
	retries += e.load(urls, after, 32, nil)
	t.Logf("worker-1 killed with %d of %d orders in flight; %d orders in all (%d client retries)",
		inFlight, backlog, len(e.ids()), retries)
	e.stack.Start(t, "worker-1")
	finals := e.waitFinal(3 * time.Minute)
	t.Logf("all %d orders final %s after the kill", len(finals), time.Since(killedAt).Round(time.Second))
	e.assertExactlyOnce(finals)
}

// TestDrillKafkaDownFor30s: Kafka stops for 30 s while orders keep arriving.
// Every order is still accepted at the first try (the outbox holds them),
// and all are published and processed once Kafka is back.
func TestDrillKafkaDownFor30s(t *testing.T) {
	e := newDrill(t, 3, 300, topology.KafkaBroker)
	urls := e.stack.Endpoints.OrdersURLs
	e.stack.Stop(t, topology.KafkaBroker)
	stopped := time.Now()
	tick := time.NewTicker(100 * time.Millisecond) // ~10 orders/s, a steady trickle
	defer tick.Stop()
	n := 0
	for time.Since(stopped) < 30*time.Second {
		<-tick.C
		_, tries, ok := e.place(urls, e.customerOf(n), e.randomLines())
		if !ok || tries != 1 {
			t.Errorf("order %d during the outage: accepted=%v after %d tries; want accepted at once", n, ok, tries)
		}
		n++
	}
	backlog := metric(t, urls[:1], "orders_outbox_backlog", nil) // every clone watches every shard: read one
	if backlog < float64(n)/2 {
		t.Errorf("outbox backlog %v after %d orders with Kafka down: the orders were not held in the outbox", backlog, n)
	}
	t.Logf("Kafka down %s: %d orders accepted, outbox backlog %v", time.Since(stopped).Round(time.Second), n, backlog)
	e.stack.Start(t, topology.KafkaBroker)
	restarted := time.Now()
	finals := e.waitFinal(3 * time.Minute)
	t.Logf("all %d orders final %s after Kafka was back", len(finals), time.Since(restarted).Round(time.Second))
	e.assertExactlyOnce(finals)
}

// TestDrillRelayLeaderKilled: kill -9 the orders API clone that holds a
// shard's relay lock while that shard's customers keep ordering. Postgres
// drops the dead session's advisory lock and the other clone takes the
// shard over within seconds; nothing is lost or published twice as a
// different event.
func TestDrillRelayLeaderKilled(t *testing.T) {
	e := newDrill(t, 2, 400, "")
	const shard = 3
	var shardCustomers []string
	for i := 0; len(shardCustomers) < 20; i++ {
		if c := e.customer(i, i%7 == 0); orders.ShardOf(c, topology.LogicalShards) == shard {
			shardCustomers = append(shardCustomers, c)
		}
	}
	e.customerOf = func(i int) string { return shardCustomers[i%len(shardCustomers)] }

	urls := e.stack.Endpoints.OrdersURLs
	leaderOf := func() (string, string) {
		for i, u := range urls {
			if metric(t, []string{u}, "orders_relay_leader", map[string]string{"shard": strconv.Itoa(shard)}) == 1 {
				return u, urls[(i+1)%len(urls)]
			}
		}
		return "", ""
	}
	var leader, survivor string
	stacktest.Eventually(t, 10*time.Second, "a relay leads shard 3", func() error {
		if leader, survivor = leaderOf(); leader == "" {
			return fmt.Errorf("no clone reports orders_relay_leader{shard=\"3\"} 1")
		}
		return nil
	})
	name := e.component(leader)
	e.stack.Restart(t, name)
	t.Logf("%s leads shard %d; killing it", name, shard)

	e.load(func() []string { return []string{survivor} }, 100, 8, nil)
	e.stack.Kill(t, name)
	killed := time.Now()
	var takeover time.Duration
	stacktest.Eventually(t, 15*time.Second, "the surviving clone takes shard 3 over", func() error {
		if metric(t, []string{survivor}, "orders_relay_leader", map[string]string{"shard": strconv.Itoa(shard)}) != 1 {
			return fmt.Errorf("not yet")
		}
		takeover = time.Since(killed)
		return nil
	})
	e.load(func() []string { return []string{survivor} }, 200, 8, nil)
	t.Logf("relay of shard %d taken over %s after the kill", shard, takeover.Round(10*time.Millisecond))
	if takeover > 5*time.Second {
		t.Errorf("takeover took %s, want within seconds", takeover)
	}
	e.stack.Start(t, name)
	e.assertExactlyOnce(e.waitFinal(2 * time.Minute))
}

// TestDrillCatalogPrimaryDownFor30s: the catalog primary stops for 30 s
// while orders keep arriving. They are still accepted (pricing reads the
// replica), and the workers, whose stock reservations fail meanwhile, park
// them on their lanes instead of dead-lettering them. Once the primary is
// back every order finishes by itself within 60 s, once, with exact stock.
func TestDrillCatalogPrimaryDownFor30s(t *testing.T) {
	e := newDrill(t, 3, 300, topology.PGCatalogPrimary)
	urls, workers := e.stack.Endpoints.OrdersURLs, e.stack.Endpoints.WorkerURLs
	// A few orders first, all the way: the products are priced from the
	// replica and cached before the primary goes.
	e.load(func() []string { return urls }, 10, 2, nil)
	e.waitFinal(time.Minute)
	deadBefore := metric(t, workers, "orders_worker_messages_total", map[string]string{"outcome": "dead_lettered"})

	e.stack.Stop(t, topology.PGCatalogPrimary)
	stopped := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for time.Since(stopped) < 30*time.Second {
		<-tick.C
		if _, _, ok := e.place(urls, e.customerOf(n), e.randomLines()); !ok {
			t.Errorf("order %d during the outage was not accepted", n)
		}
		n++
	}
	parked := metric(t, workers, "orders_worker_parked_messages", nil)
	if parked < 1 {
		t.Errorf("orders_worker_parked_messages = %v with the catalog primary down for 30 s, want the waiting orders counted", parked)
	}
	t.Logf("catalog primary down %s: %d orders accepted, %v parked, %d pending", time.Since(stopped).Round(time.Second), n, parked, e.pending())
	e.stack.Start(t, topology.PGCatalogPrimary)
	back := time.Now()
	finals := e.waitFinal(60 * time.Second)
	t.Logf("all %d orders final %s after the primary was back, no command run", len(finals), time.Since(back).Round(time.Second))
	if dead := metric(t, workers, "orders_worker_messages_total", map[string]string{"outcome": "dead_lettered"}); dead != deadBefore {
		t.Errorf("%v orders dead-lettered during a 30 s catalog outage, want none", dead-deadBefore)
	}
	e.assertExactlyOnce(finals)
}

// TestDrillLongPollThroughTheGatewayWhileKafkaIsDown: with Kafka stopped an
// order stays pending, and GET ?wait=8s through the gateway answers 200
// with the pending order after about 8 s: the gateway gives the long poll
// its wait, does not retry it, and holds nothing against the clone.
func TestDrillLongPollThroughTheGatewayWhileKafkaIsDown(t *testing.T) {
	e := newDrill(t, 1, 100, topology.KafkaBroker)
	gw, adminURL := e.stack.Endpoints.GatewayURL, e.stack.Endpoints.GatewayAdminURL
	token := e.devToken(gw, e.customer(1, false))
	e.stack.Stop(t, topology.KafkaBroker)

	var productID int64
	for id := range e.products {
		productID = id
	}
	body := fmt.Sprintf(`{"items":[{"product_id":%d,"quantity":1}]}`, productID)
	code, raw := e.gatewayCall(http.MethodPost, gw+"/api/orders", token, body)
	var placed struct{ ID, Status string }
	if err := json.Unmarshal(raw, &placed); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /api/orders with Kafka down: %d %s", code, raw)
	}
	e.mu.Lock()
	e.accepted[placed.ID] = acceptedOrder{customer: e.customer(1, false), lines: []orders.Line{{ProductID: productID, Quantity: 1}}}
	e.mu.Unlock()

	retriesBefore := metric(t, []string{adminURL}, "gateway_retries_total", map[string]string{"pool": "orders"})
	ejectionsBefore, failuresBefore := e.ordersPoolHealth(adminURL)
	start := time.Now()
	code, raw = e.gatewayCall(http.MethodGet, gw+"/api/orders/"+placed.ID+"?wait=8s", token, "")
	took := time.Since(start)
	var got struct{ Status string }
	_ = json.Unmarshal(raw, &got)
	if code != http.StatusOK || got.Status != string(orders.StatusPending) {
		t.Fatalf("GET ?wait=8s with Kafka down: %d %s after %s, want 200 with the pending order", code, raw, took.Round(time.Millisecond))
	}
	if took < 7500*time.Millisecond || took > 12*time.Second {
		t.Errorf("GET ?wait=8s answered after %s, want about 8 s", took.Round(time.Millisecond))
	}
	if r := metric(t, []string{adminURL}, "gateway_retries_total", map[string]string{"pool": "orders"}); r != retriesBefore {
		t.Errorf("%v gateway retries counted during the long poll, want none", r-retriesBefore)
	}
	if ej, fails := e.ordersPoolHealth(adminURL); ej != ejectionsBefore || fails != failuresBefore {
		t.Errorf("orders pool: %d ejections and %d failures after the long poll, %d and %d before: it was held against the clone",
			ej, fails, ejectionsBefore, failuresBefore)
	}
	t.Logf("GET ?wait=8s answered 200 pending after %s", took.Round(time.Millisecond))
	e.stack.Start(t, topology.KafkaBroker)
	e.assertExactlyOnce(e.waitFinal(2 * time.Minute))
}

// gatewayCall sends one request through the gateway with a bearer token,
// with a client that outlasts the longest long poll.
func (e *env) gatewayCall(method, u, token, body string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (e *env) devToken(gw, customer string) string {
	e.t.Helper()
	code, raw := e.gatewayCall(http.MethodPost, gw+"/api/auth/dev-token", "", fmt.Sprintf(`{"customer_id":%q,"role":"customer"}`, customer))
	var out struct{ Token string }
	if err := json.Unmarshal(raw, &out); err != nil || code != http.StatusOK || out.Token == "" {
		e.t.Fatalf("dev token: %d %s", code, raw)
	}
	return out.Token
}

// ordersPoolHealth sums the orders pool members' ejections and failures
// as /admin/backends shows them.
func (e *env) ordersPoolHealth(adminURL string) (ejections, failures int64) {
	e.t.Helper()
	resp, err := http.Get(adminURL + "/admin/backends")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Pools map[string]balancer.PoolStatus
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	for _, m := range out.Pools["orders"].Members {
		ejections += m.Ejections
		failures += m.Failures
	}
	return ejections, failures
}
