package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/gateway/internal/ratelimit"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/problem"
)

var testKey = []byte("proxy-test-key-proxy-test-key-12345")

// backend is a fake clone that echoes what the gateway sent it.
type backend struct {
	*httptest.Server
	hits   atomic.Int64
	status atomic.Int32
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.status.Store(http.StatusOK)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if s := int(b.status.Load()); s != http.StatusOK {
			problem.Write(w, problem.Details{Type: "about:blank", Title: http.StatusText(s), Status: s, Detail: "backend says so"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "backend-must-not-leak")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.RequestURI(), "user": r.Header.Get(identity.HeaderID), "role": r.Header.Get(identity.HeaderRole),
			"request_id": r.Header.Get("X-Request-Id"), "body": string(body), "host": r.Host,
		})
	}))
	t.Cleanup(b.Close)
	return b
}

type gateway struct {
	h               *Handler
	catalog, orders *balancer.Pool
	verifier        *auth.Verifier
}

func newGateway(t *testing.T, catalogURLs, ordersURLs []string, tweak func(*Config)) *gateway {
	t.Helper()
	opts := balancer.Options{Policy: balancer.RoundRobin}
	catalog, err := balancer.NewPool("catalog", catalogURLs, opts)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := balancer.NewPool("orders", ordersURLs, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(testKey)
	cfg := Config{
		Routes: []Route{
			{Prefix: "/api/products", Pool: catalog, Access: CatalogAccess},
			{Prefix: "/api/orders", Pool: orders, Access: OrdersAccess},
		},
		Transport:      http.DefaultTransport.(*http.Transport).Clone(),
		Verifier:       v,
		TryTimeout:     time.Second,
		RequestTimeout: 3 * time.Second,
		MaxAttempts:    3,
		RetryRatio:     0.2,
		RetryMin:       10,
		MaxBody:        1 << 20,
		DevTokens:      true,
		DevTokenTTL:    time.Hour,
		Log:            slog.New(slog.DiscardHandler),
		Registry:       prometheus.NewRegistry(),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	return &gateway{h: New(cfg), catalog: catalog, orders: orders, verifier: v}
}

func (g *gateway) token(t *testing.T, sub string, role identity.Role) string {
	tok, err := g.verifier.Issue(identity.Caller{ID: sub, Role: role}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *gateway) do(method, path, token string, body io.Reader, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, body)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, r)
	return w
}

func echoed(t *testing.T, w *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	var out map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("status %d, body %q: %v", w.Code, w.Body.String(), err)
	}
	return out
}

func TestRoutingAndAccess(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	customer, admin := g.token(t, "alice", identity.Customer), g.token(t, "root", identity.Admin)
	expired, err := g.verifier.Issue(identity.Caller{ID: "alice", Role: identity.Customer}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/products", "", 200},
		{"GET", "/api/products/7", "", 200},
		{"HEAD", "/api/products/7", "", 200},
		{"GET", "/api/products", customer, 200},
		{"GET", "/api/products", "forged.token.here", 401},
		{"GET", "/api/products", expired, 401},
		{"POST", "/api/products", "", 401},
		{"POST", "/api/products", customer, 403},
		{"POST", "/api/products", admin, 200},
		{"PUT", "/api/products/7", customer, 403},
		{"DELETE", "/api/products/7", admin, 200},
		{"GET", "/api/orders", "", 401},
		{"GET", "/api/orders", expired, 401},
		{"GET", "/api/orders", customer, 200},
		{"POST", "/api/orders", customer, 200},
		{"GET", "/api/orders/12", customer, 200},
		{"GET", "/api/orders?all=true", customer, 403},
		{"GET", "/api/orders?all=1", customer, 403},
		{"GET", "/api/orders?all=false", customer, 200},
		{"GET", "/api/orders?all=true", admin, 200},
		{"GET", "/api/orders?scope=all", customer, 403},
		{"GET", "/api/orders?scope=own", customer, 200},
		{"GET", "/api/orders?scope=all", admin, 200},
		{"GET", "/internal/stock/7", admin, 404},
		{"POST", "/internal/reservations", "", 404},
		{"GET", "/api/productsX", "", 404},
		{"GET", "/api/orders-export", customer, 404},
		{"GET", "/", "", 404},
	} {
		w := g.do(tc.method, tc.path, tc.token, nil)
		if w.Code != tc.want {
			t.Errorf("%s %s (token %v): %d, want %d: %s", tc.method, tc.path, tc.token != "", w.Code, tc.want, w.Body)
			continue
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != problem.ContentType {
			t.Errorf("%s %s: %d with Content-Type %q, want problem+json", tc.method, tc.path, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tc.method, tc.path)
		}
	}
}

func TestIdentityHeadersComeOnlyFromTheToken(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	spoof := []string{"X-User-Id", "mallory", "X-User-Role", "admin"}

	anon := echoed(t, g.do("GET", "/api/products", "", nil, spoof...))
	if anon["user"] != "" || anon["role"] != "" {
		t.Errorf("anonymous request reached the catalog as %q/%q", anon["user"], anon["role"])
	}
	got := echoed(t, g.do("GET", "/api/orders", g.token(t, "alice", identity.Customer), nil, spoof...))
	if got["user"] != "alice" || got["role"] != "customer" {
		t.Errorf("downstream identity %q/%q, want alice/customer", got["user"], got["role"])
	}
	r := httptest.NewRequest("GET", "/api/products", nil)
	r.Header.Add("x-user-id", "mallory") // any spelling
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, r)
	if echoed(t, w)["user"] != "" {
		t.Error("a lower-case spoofed header got through")
	}
}

func TestDevToken(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	w := g.do("POST", DevTokenPath, "", strings.NewReader(`{"customer_id":"alice","role":"customer"}`))
	var out struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != 200 {
		t.Fatalf("dev token: %d %s", w.Code, w.Body)
	}
	if id, err := g.verifier.Verify(out.Token); err != nil || id.ID != "alice" || id.Role != identity.Customer {
		t.Fatalf("issued token verifies as %+v, %v", id, err)
	}
	if w := g.do("POST", DevTokenPath, "", strings.NewReader(`{"customer_id":"alice","role":"root"}`)); w.Code != 400 {
		t.Errorf("bad role: %d", w.Code)
	}

	prod := newGateway(t, []string{cat.URL}, []string{ord.URL}, func(c *Config) { c.DevTokens = false })
	if w := prod.do("POST", DevTokenPath, "", strings.NewReader(`{"customer_id":"alice"}`)); w.Code != 404 {
		t.Errorf("outside dev mode the dev-token route answered %d, want 404", w.Code)
	}
}

func TestRequestIDAndHeaders(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	w := g.do("GET", "/api/products", "", nil, "X-Request-Id", "client-id-1")
	if got := w.Header().Values("X-Request-Id"); len(got) != 1 || got[0] != "client-id-1" {
		t.Errorf("X-Request-Id = %q, want the client's, once", got)
	}
	if echoed(t, w)["request_id"] != "client-id-1" {
		t.Error("the backend did not get the request id")
	}
	w = g.do("GET", "/api/products", "", nil, "X-Request-Id", "bad id\twith spaces")
	if id := w.Header().Get("X-Request-Id"); len(id) != 32 {
		t.Errorf("an invalid client id should be replaced, got %q", id)
	}
}

func TestBodyLimit(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	admin := g.token(t, "root", identity.Admin)
	big := strings.Repeat("x", 1<<20+1)
	if w := g.do("POST", "/api/products", admin, strings.NewReader(big)); w.Code != 413 {
		t.Errorf("1 MiB + 1 with Content-Length: %d, want 413", w.Code)
	}
	r := httptest.NewRequest("POST", "/api/products", io.MultiReader(strings.NewReader(big)))
	r.ContentLength = -1 // chunked: no length up front
	r.Header.Set("Authorization", "Bearer "+admin)
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, r)
	if w.Code != 413 {
		t.Errorf("1 MiB + 1 chunked: %d, want 413", w.Code)
	}
	if cat.hits.Load() != 0 {
		t.Error("an oversized body reached the catalog")
	}
	ok := strings.Repeat("y", 1<<20)
	if w := g.do("POST", "/api/products", admin, strings.NewReader(ok)); w.Code != 200 || echoed(t, w)["body"] != ok {
		t.Errorf("exactly 1 MiB: %d", w.Code)
	}
}

func TestRateLimit(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, func(c *Config) { c.Limiter = ratelimit.New(1, 2) })
	alice, bob := g.token(t, "alice", identity.Customer), g.token(t, "bob", identity.Customer)
	for i, want := range []int{200, 200, 429} {
		w := g.do("GET", "/api/orders", alice, nil)
		if w.Code != want {
			t.Fatalf("alice request %d: %d, want %d", i+1, w.Code, want)
		}
		if w.Header().Get("RateLimit-Limit") != "1" || w.Header().Get("RateLimit-Policy") != "1;w=1;burst=2" || w.Header().Get("RateLimit-Remaining") == "" {
			t.Errorf("request %d: RateLimit headers %v", i+1, w.Header())
		}
		if want == 429 && (w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != problem.ContentType) {
			t.Errorf("429 headers: %v", w.Header())
		}
	}
	if w := g.do("GET", "/api/orders", bob, nil); w.Code != 200 {
		t.Errorf("bob is limited by alice's bucket: %d", w.Code)
	}
}

func TestNoHealthyMemberAnswers503AtOnce(t *testing.T) {
	cat := newBackend(t)
	// Timeouts far longer than the request's own deadline: a gateway that
	// waited for a member to come back would run into that deadline and
	// answer 504 or 499, not 503 with Retry-After.
	g := newGateway(t, []string{cat.URL}, []string{"http://127.0.0.1:1"}, func(c *Config) {
		c.TryTimeout, c.RequestTimeout = time.Hour, time.Hour
	})
	g.catalog.Drain(cat.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/api/products", nil))
	if w.Code != 503 || w.Header().Get("Content-Type") != problem.ContentType || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	if n := cat.hits.Load(); n != 0 {
		t.Errorf("the drained member got %d requests", n)
	}
}

func TestUpstreamProblemPassesThroughUnchanged(t *testing.T) {
	cat, ord := newBackend(t), newBackend(t)
	g := newGateway(t, []string{cat.URL}, []string{ord.URL}, nil)
	cat.status.Store(http.StatusConflict)
	w := g.do("GET", "/api/products/1", "", nil)
	var p problem.Details
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 409 || p.Detail != "backend says so" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestRetries(t *testing.T) {
	dead := "http://127.0.0.1:1" // connection refused
	for _, tc := range []struct {
		name        string
		method      string
		headers     []string
		badStatus   int // the bad member's answer; 0: it refuses connections
		wantCode    int
		wantRetries bool
	}{
		{"connect error, GET", "GET", nil, 0, 200, true},
		{"connect error, POST: never reached it, so safe", "POST", nil, 0, 200, true},
		{"503, GET", "GET", nil, 503, 200, true},
		{"502, PUT is idempotent", "PUT", nil, 502, 200, true},
		{"503, POST: may have been processed", "POST", nil, 503, 503, false},
		{"503, POST with Idempotency-Key", "POST", []string{"Idempotency-Key", "k1"}, 503, 200, true},
		{"500 is not retried", "GET", nil, 500, 500, false},
		{"409 is an answer", "GET", nil, 409, 409, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := newBackend(t)
			badURL := dead
			if tc.badStatus != 0 {
				bad := newBackend(t)
				bad.status.Store(int32(tc.badStatus))
				badURL = bad.URL
			}
			g := newGateway(t, []string{badURL, good.URL}, []string{badURL, good.URL}, nil)
			admin := g.token(t, "root", identity.Admin)
			w := g.do(tc.method, "/api/orders", admin, strings.NewReader(`{"items":[]}`), tc.headers...)
			if w.Code != tc.wantCode {
				t.Fatalf("%d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantRetries {
				if got := echoed(t, w)["body"]; got != `{"items":[]}` {
					t.Errorf("the retried request's body = %q", got)
				}
			}
			if retried := good.hits.Load() > 0; retried != tc.wantRetries {
				t.Errorf("retried on the good member = %v, want %v", retried, tc.wantRetries)
			}
		})
	}
}

func TestRetryBudgetStopsRetryStorms(t *testing.T) {
	bad1, bad2 := newBackend(t), newBackend(t)
	bad1.status.Store(503)
	bad2.status.Store(503)
	g := newGateway(t, []string{bad1.URL, bad2.URL}, []string{bad1.URL}, func(c *Config) { c.RetryMin = 0 })
	const n = 100
	for range n {
		if w := g.do("GET", "/api/products", "", nil); w.Code != 503 {
			t.Fatalf("%d", w.Code)
		}
	}
	tries := bad1.hits.Load() + bad2.hits.Load()
	if retries := tries - n; retries > n/5 || retries < n/5-2 {
		t.Errorf("%d retries for %d requests; the budget allows 20%%", retries, n)
	}
}

func TestPerTryTimeoutRetriesASlowMemberForIdempotentRequests(t *testing.T) {
	// The slow member answers nothing until the gateway gives its try up;
	// only the per-try timeout can end that try before the request's own
	// deadline (which would be a 504), so a 200 after the slow member had a
	// try proves the timeout fired and the request moved on.
	var slowTries atomic.Int64
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowTries.Add(1)
		select {
		case <-r.Context().Done():
		case <-release: // the test is over
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	good := newBackend(t)
	g := newGateway(t, []string{slow.URL, good.URL}, []string{slow.URL}, func(c *Config) {
		c.TryTimeout, c.RequestTimeout = 100*time.Millisecond, 30*time.Second
	})
	for slowTries.Load() == 0 {
		// Round robin may start at either member: ask until the slow one
		// had a try (the good one answers at once).
		if w := g.do("GET", "/api/products", "", nil); w.Code != 200 {
			t.Fatalf("GET with a slow member: %d %s", w.Code, w.Body)
		}
	}
	w := g.do("POST", "/api/orders", g.token(t, "alice", identity.Customer), strings.NewReader("{}"))
	if w.Code != 504 {
		t.Fatalf("a POST that timed out: %d, want 504", w.Code)
	}
}

func TestWhichRequestsMayBeRetried(t *testing.T) {
	for _, tc := range []struct {
		method string
		key    bool
		kind   retryKind
		want   bool
	}{
		{"GET", false, idempotentOnly, true},
		{"HEAD", false, idempotentOnly, true},
		{"PUT", false, idempotentOnly, true},
		{"DELETE", false, idempotentOnly, true},
		{"POST", false, idempotentOnly, false},
		{"PATCH", false, idempotentOnly, false},
		{"POST", true, idempotentOnly, true},
		{"POST", false, alwaysRetry, true},
		{"PATCH", false, alwaysRetry, true},
	} {
		r := httptest.NewRequest(tc.method, "/api/orders", nil)
		if tc.key {
			r.Header.Set("Idempotency-Key", "k")
		}
		if got := mayRetry(r, tc.kind); got != tc.want {
			t.Errorf("%s key=%v kind=%v: %v, want %v", tc.method, tc.key, tc.kind, got, tc.want)
		}
	}
}

// TestLongPollAnswersAtTheEndOfItsWait: a member holds GET ?wait= for the
// wait, longer than a try may take, and then answers with the order as it
// is. The gateway passes that answer on instead of timing the try out,
// sends the request once, and the member's health and latency estimate
// are untouched.
func TestLongPollAnswersAtTheEndOfItsWait(t *testing.T) {
	var hits atomic.Int64
	holding := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
		if err != nil {
			wait = 0
		}
		select { // stands in for an order that stays pending for the whole wait
		case <-r.Context().Done():
			return
		case <-time.After(wait):
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"1-x","status":"pending"}`)
	}))
	t.Cleanup(holding.Close)
	g := newGateway(t, []string{holding.URL}, []string{holding.URL}, func(c *Config) {
		c.TryTimeout, c.RequestTimeout = 20*time.Millisecond, 40*time.Millisecond
	})
	tok := g.token(t, "alice", identity.Customer)

	w := g.do("GET", "/api/orders/1-x?wait=300ms", tok, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"pending"`) {
		t.Fatalf("long poll: %d %s, want 200 with the pending order", w.Code, w.Body.String())
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the member got the long poll %d times, want once (never retried)", n)
	}
	st := g.orders.Status().Members[0]
	if st.Failures != 0 || st.Ejected || st.LatencyMS != 0 {
		t.Fatalf("member after a long poll: %+v; want no failure, no ejection, no latency sample", st)
	}

	// The same slowness without ?wait= is a slow member: timed out, and
	// counted against it.
	hits.Store(0)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	g = newGateway(t, []string{slow.URL}, []string{slow.URL}, func(c *Config) {
		c.TryTimeout, c.RequestTimeout = 20*time.Millisecond, 40*time.Millisecond
	})
	if w := g.do("GET", "/api/orders/1-x", tok, nil); w.Code != http.StatusGatewayTimeout {
		t.Fatalf("a member that never answers: %d, want 504", w.Code)
	}
	if st := g.orders.Status().Members[0]; st.Failures == 0 {
		t.Fatalf("member %+v: a timed-out ordinary GET must count as a failure", st)
	}
}

func TestLongPollWait(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           time.Duration
	}{
		{"GET", "/api/orders/1-x?wait=8s", 8 * time.Second},
		{"GET", "/api/orders/1-x?wait=1m", MaxLongPoll},
		{"GET", "/api/orders/1-x", 0},
		{"GET", "/api/orders/1-x?wait=soon", 0},
		{"GET", "/api/orders/1-x?wait=-1s", 0},
		{"POST", "/api/orders?wait=8s", 0},
	} {
		if got := longPollWait(httptest.NewRequest(tc.method, tc.target, nil)); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
		}
	}
}

// TestServerSpanCarriesTheRouteTemplate: the public mux has one "/"
// pattern; the gateway's server span must still say which route a request
// took, with the id as a variable, so traces group by route.
func TestServerSpanCarriesTheRouteTemplate(t *testing.T) {
	backend := newBackend(t)
	g := newGateway(t, []string{backend.URL}, []string{backend.URL}, nil)
	tok := g.token(t, "alice", identity.Customer)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/api/products/7", "/api/products/{id}"},
		{"GET", "/api/products", "/api/products"},
		{"GET", "/api/orders/3-0193a8f2", "/api/orders/{id}"},
		{"POST", "/api/auth/dev-token", "/api/auth/dev-token"},
	} {
		rec := tracetest.NewSpanRecorder()
		tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
		ctx, span := tracer.Start(context.Background(), "gateway")
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader(`{"customer_id":"alice","role":"customer"}`)
		}
		r := httptest.NewRequest(tc.method, tc.path, body).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+tok)
		g.h.ServeHTTP(httptest.NewRecorder(), r)
		span.End()
		got := ""
		for _, a := range rec.Ended()[0].Attributes() {
			if a.Key == "http.route" {
				got = a.Value.AsString()
			}
		}
		if got != tc.want {
			t.Errorf("%s %s: http.route %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestOneMemberLabelEverywhere: a clone is named the same way (host:port)
// in the tries metric, in /admin/backends and in the member metrics, so
// they join; its own name (X-Served-By) is shown beside the address.
func TestOneMemberLabelEverywhere(t *testing.T) {
	clone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "catalog-9")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(clone.Close)
	reg := prometheus.NewRegistry()
	g := newGateway(t, []string{clone.URL}, []string{clone.URL}, func(c *Config) { c.Registry = reg })
	if w := g.do("GET", "/api/products/1", "", nil); w.Code != 200 {
		t.Fatalf("GET: %d", w.Code)
	}
	host := strings.TrimPrefix(clone.URL, "http://")
	st := g.catalog.Status().Members[0]
	if st.Member != host || st.Name != "catalog-9" {
		t.Fatalf("/admin/backends member %q name %q, want %q and catalog-9", st.Member, st.Name, host)
	}
	reg.MustRegister(balancer.NewCollector("gateway", g.catalog))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "member" {
					seen[f.GetName()] = true
					if l.GetValue() != host {
						t.Errorf("%s{member=%q}, want member=%q", f.GetName(), l.GetValue(), host)
					}
				}
			}
		}
	}
	for _, name := range []string{"gateway_upstream_tries_total", "gateway_member_requests_total"} {
		if !seen[name] {
			t.Errorf("%s has no member label", name)
		}
	}
}
