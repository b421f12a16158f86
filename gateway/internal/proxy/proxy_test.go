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

	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/gateway/internal/ratelimit"
	"github.com/scaleshop/scaleshop/infra/balancer"
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
			problem.Write(w, problem.New(s, "backend says so"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "backend-must-not-leak")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.RequestURI(), "user": r.Header.Get(auth.HeaderUserID), "role": r.Header.Get(auth.HeaderUserRole),
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

func (g *gateway) token(t *testing.T, sub string, role auth.Role) string {
	tok, err := g.verifier.Issue(auth.Identity{Subject: sub, Role: role}, time.Hour)
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
	customer, admin := g.token(t, "alice", auth.Customer), g.token(t, "root", auth.Admin)
	expired, err := g.verifier.Issue(auth.Identity{Subject: "alice", Role: auth.Customer}, -time.Minute)
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
	got := echoed(t, g.do("GET", "/api/orders", g.token(t, "alice", auth.Customer), nil, spoof...))
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
	if id, err := g.verifier.Verify(out.Token); err != nil || id.Subject != "alice" || id.Role != auth.Customer {
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
	admin := g.token(t, "root", auth.Admin)
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
	alice, bob := g.token(t, "alice", auth.Customer), g.token(t, "bob", auth.Customer)
	for i, want := range []int{200, 200, 429} {
		w := g.do("GET", "/api/orders", alice, nil)
		if w.Code != want {
			t.Fatalf("alice request %d: %d, want %d", i+1, w.Code, want)
		}
		if w.Header().Get("RateLimit-Limit") != "2" || w.Header().Get("RateLimit-Remaining") == "" {
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
			admin := g.token(t, "root", auth.Admin)
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
	w := g.do("POST", "/api/orders", g.token(t, "alice", auth.Customer), strings.NewReader("{}"))
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
