// Package e2e follows requests through the whole native stack and checks
// what a user sees in Jaeger: one trace per request, every tier in it,
// parents linked, from the gateway to the final order status.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/traceview"
)

var client = &http.Client{Timeout: 15 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, token string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func devToken(t *testing.T, stack *stacktest.Stack, customer, role string) string {
	t.Helper()
	r := do(t, "POST", stack.Endpoints.GatewayURL+"/api/auth/dev-token", "",
		map[string]string{"customer_id": customer, "role": role})
	var out struct{ Token string }
	if r.status != 200 || json.Unmarshal(r.body, &out) != nil || out.Token == "" {
		t.Fatalf("dev token: %d %s", r.status, r.body)
	}
	return out.Token
}

// placeOrderAndWait places a one-line order for a new customer through the
// gateway and waits (long poll) until it leaves pending. It returns the
// POST's response (its X-Trace-Id names the order's trace) and the order.
func placeOrderAndWait(t *testing.T, stack *stacktest.Stack, customer string) (response, order) {
	t.Helper()
	token := devToken(t, stack, customer, "customer")
	placed := do(t, "POST", stack.Endpoints.GatewayURL+"/api/orders", token,
		map[string]any{"items": []map[string]int{{"product_id": 1 + rand.IntN(10000), "quantity": 1}}})
	if placed.status != http.StatusAccepted {
		t.Fatalf("POST /api/orders = %d %s", placed.status, placed.body)
	}
	var o order
	if err := json.Unmarshal(placed.body, &o); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 30*time.Second, "order final", func() error {
		r := do(t, "GET", stack.Endpoints.GatewayURL+"/api/orders/"+o.ID+"?wait=5s", token, nil)
		if err := json.Unmarshal(r.body, &o); err != nil {
			return err
		}
		if o.Status == "pending" {
			return fmt.Errorf("still pending")
		}
		return nil
	})
	return placed, o
}

type order struct{ ID, Status string }

// waitForTrace polls Jaeger until check accepts the trace: each process
// exports its spans on its own schedule.
func waitForTrace(t *testing.T, stack *stacktest.Stack, id string, check func(*traceview.Trace) error) *traceview.Trace {
	t.Helper()
	jaeger := &traceview.Client{BaseURL: stack.Endpoints.JaegerQueryURL}
	var got *traceview.Trace
	stacktest.Eventually(t, 20*time.Second, "trace "+id+" complete in Jaeger", func() error {
		tr, err := jaeger.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if err := check(tr); err != nil {
			return err
		}
		got = tr
		return nil
	})
	return got
}

// find returns the spans that match.
func find(tr *traceview.Trace, match func(*traceview.Span) bool) []*traceview.Span {
	var out []*traceview.Span
	for _, s := range tr.Spans {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

func byID(tr *traceview.Trace) map[string]*traceview.Span {
	m := map[string]*traceview.Span{}
	for _, s := range tr.Spans {
		m[s.SpanID] = s
	}
	return m
}

// oneChildOf returns the single span under parent that matches, or an error.
func oneChildOf(parent *traceview.Span, what string, match func(*traceview.Span) bool) (*traceview.Span, error) {
	var found []*traceview.Span
	for _, c := range parent.Children {
		if match(c) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d %s under %s %q, want 1", len(found), what, parent.Service, parent.Operation)
	}
	return found[0], nil
}

func serviceKind(service, kind string) func(*traceview.Span) bool {
	return func(s *traceview.Span) bool { return s.Service == service && s.Kind == kind }
}

func TestAProductReadIsOneTraceThroughGatewayCatalogCacheAndReplica(t *testing.T) {
	stack := stacktest.Require(t)
	id := 1 + rand.IntN(10000)
	r := do(t, "GET", fmt.Sprintf("%s/api/products/%d", stack.Endpoints.GatewayURL, id), "", nil)
	if r.status != 200 {
		t.Fatalf("GET product %d = %d %s", id, r.status, r.body)
	}
	servedFrom := r.header.Get("X-Served-From")
	waitForTrace(t, stack, r.header.Get("X-Trace-Id"), func(tr *traceview.Trace) error {
		if len(tr.Roots) != 1 || tr.Roots[0].Service != "gateway" || tr.Roots[0].Kind != "server" {
			return fmt.Errorf("want one root, the gateway's server span; roots %d", len(tr.Roots))
		}
		try, err := oneChildOf(tr.Roots[0], "gateway client spans", serviceKind("gateway", "client"))
		if err != nil {
			return err
		}
		server, err := oneChildOf(try, "catalog server spans", serviceKind("catalog", "server"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(server.Instance, "catalog-") {
			return fmt.Errorf("catalog span instance %q does not name the clone", server.Instance)
		}
		if len(find(tr, func(s *traceview.Span) bool {
			return strings.HasPrefix(s.Operation, "memcached") && byID(tr)[s.ParentID] == server
		})) == 0 {
			return fmt.Errorf("no memcached span under the catalog span")
		}
		replicaSQL := find(tr, func(s *traceview.Span) bool {
			return s.Attrs["db.scaleshop.role"] == "replica" && s.Service == "catalog"
		})
		if servedFrom == "replica" && len(replicaSQL) == 0 {
			return fmt.Errorf("served from the replica but no SQL span on the replica")
		}
		if servedFrom == "cache" && len(replicaSQL) != 0 {
			return fmt.Errorf("served from the cache yet the replica was queried")
		}
		return nil
	})
}

func TestAnOrderIsOneTraceFromThePostToItsFinalStatus(t *testing.T) {
	stack := stacktest.Require(t)
	placed, order := placeOrderAndWait(t, stack, fmt.Sprintf("e2e-%d", rand.Int64()))
	shard, _, _ := strings.Cut(order.ID, "-")

	waitForTrace(t, stack, placed.header.Get("X-Trace-Id"), func(tr *traceview.Trace) error {
		if len(tr.Roots) != 1 || tr.Roots[0].Service != "gateway" {
			return fmt.Errorf("%d roots; want only the gateway's (an orphan root means lost context)", len(tr.Roots))
		}
		spans := byID(tr)
		api := find(tr, func(s *traceview.Span) bool { return s.Service == "orders" && s.Kind == "server" })
		if len(api) != 1 || spans[api[0].ParentID].Service != "gateway" {
			return fmt.Errorf("want one orders API server span under the gateway")
		}
		if len(find(tr, func(s *traceview.Span) bool {
			return s.Service == "orders" && s.Attrs["db.scaleshop.role"] == "shard-"+shard
		})) == 0 {
			return fmt.Errorf("no SQL span on shard-%s from the orders API", shard)
		}
		producers := find(tr, func(s *traceview.Span) bool {
			return s.Kind == "producer" && strings.Contains(s.Operation, "orders.placed")
		})
		if len(producers) != 1 {
			return fmt.Errorf("%d producer spans for orders.placed, want 1", len(producers))
		}
		consumer, err := oneChildOf(producers[0], "consumer spans", func(s *traceview.Span) bool { return s.Kind == "consumer" })
		if err != nil {
			return err
		}
		if consumer.Service != "worker" || !strings.HasPrefix(consumer.Instance, "worker-") {
			return fmt.Errorf("consumer span from %s/%s, want a worker clone", consumer.Service, consumer.Instance)
		}
		reservations := find(tr, func(s *traceview.Span) bool {
			return s.Service == "catalog" && s.Kind == "server" && strings.Contains(s.Operation, "/internal/reservations")
		})
		if len(reservations) == 0 {
			return fmt.Errorf("no catalog reservation span")
		}
		finalUpdate := find(tr, func(s *traceview.Span) bool {
			return s.Service == "worker" && strings.Contains(s.Attrs["db.query.text"], "UPDATE orders")
		})
		if len(finalUpdate) != 1 {
			return fmt.Errorf("%d final status updates by the worker, want 1", len(finalUpdate))
		}
		components := map[string]bool{}
		for _, s := range tr.Spans {
			components[s.Service] = true
			if sys := s.Attrs["db.system.name"]; sys != "" {
				components[sys] = true
			}
			if sys := s.Attrs["messaging.system"]; sys != "" {
				components[sys] = true
			}
		}
		if len(components) < 5 {
			return fmt.Errorf("components %v, want at least 5", components)
		}
		return nil
	})
}

// A clone that dies as it gets a request, while the gateway still counts
// it in the pool: the try fails and the GET is retried on another clone.
// The dying clone is a member registered through the admin API that
// passes its health probes (a member added at runtime takes traffic only
// once a probe passed) and drops every other connection unanswered;
// P2C-EWMA tries an unmeasured member first, so the very next request
// shows the retry. (Killing a real clone races the health checks, which
// usually take it out before a request picks it: the gateway drills cover
// that.)
func TestADeadClonesRetryShowsAsTwoClientSpansUnderOneGatewaySpan(t *testing.T) {
	stack := stacktest.Require(t)
	stack.Exclusive(t) // a dying member in the shared pool costs others a retry
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // the process died with the request in hand
		}
	}))
	t.Cleanup(dying.Close)
	dead := dying.URL
	if r := do(t, "POST", stack.Endpoints.GatewayAdminURL+"/admin/pools/catalog/members", "", map[string]string{"url": dead}); r.status != http.StatusCreated {
		t.Fatalf("add member: %d %s", r.status, r.body)
	}
	t.Cleanup(func() {
		do(t, "DELETE", stack.Endpoints.GatewayAdminURL+"/admin/pools/catalog/members?url="+dead, "", nil)
	})
	stacktest.Eventually(t, 15*time.Second, "the dying member passes its first probe", func() error {
		r := do(t, "GET", stack.Endpoints.GatewayAdminURL+"/admin/backends", "", nil)
		var out struct {
			Pools map[string]struct {
				Members []struct{ URL, State string }
			}
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			return err
		}
		for _, m := range out.Pools["catalog"].Members {
			if m.URL == dead && m.State == "up" {
				return nil
			}
		}
		return fmt.Errorf("%s is not up in the catalog pool yet", dead)
	})

	// Send at once, before the next health check marks the member down;
	// look at the traces afterwards.
	var traceIDs []string
	for i := range 10 {
		r := do(t, "GET", fmt.Sprintf("%s/api/products/%d", stack.Endpoints.GatewayURL, 1+i), "", nil)
		if r.status != 200 {
			t.Fatalf("request %d failed with %d while a clone was dead: %s", i, r.status, r.body)
		}
		traceIDs = append(traceIDs, r.header.Get("X-Trace-Id"))
	}
	var retried string
	for _, id := range traceIDs {
		if retriesOf(t, stack, id) > 0 {
			retried = id
			break
		}
	}
	if retried == "" {
		t.Fatal("no request was retried: the dead member was never tried")
	}
	waitForTrace(t, stack, retried, func(tr *traceview.Trace) error {
		tries := find(tr, func(s *traceview.Span) bool { return s.Service == "gateway" && s.Kind == "client" })
		if len(tries) != 2 || tries[0].ParentID != tr.Roots[0].SpanID || tries[1].ParentID != tr.Roots[0].SpanID {
			return fmt.Errorf("%d gateway client spans; want 2 under the one gateway server span", len(tries))
		}
		if !tries[0].Error || tries[1].Error {
			return fmt.Errorf("want the first try failed and the second not; errors %v, %v", tries[0].Error, tries[1].Error)
		}
		if _, err := oneChildOf(tries[1], "catalog server spans", serviceKind("catalog", "server")); err != nil {
			return err
		}
		return nil
	})
}

// retriesOf reads the retry count the gateway put on a request's span.
func retriesOf(t *testing.T, stack *stacktest.Stack, traceID string) int {
	t.Helper()
	tr := waitForTrace(t, stack, traceID, func(tr *traceview.Trace) error {
		if len(tr.Roots) == 0 || tr.Roots[0].Attrs["scaleshop.retries"] == "" {
			return fmt.Errorf("no gateway span with a retry count yet")
		}
		return nil
	})
	var n int
	fmt.Sscan(tr.Roots[0].Attrs["scaleshop.retries"], &n)
	return n
}
