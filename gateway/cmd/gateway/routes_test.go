package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scaleshop/scaleshop/docs"
	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/identity"
)

// recordingBackend is a clone that remembers every path it was asked for.
type recordingBackend struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	b := &recordingBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.paths = append(b.paths, r.URL.Path)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *recordingBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

const testSigningKey = "routes-test-key-routes-test-key-0123"

func adminToken(t *testing.T) string {
	t.Helper()
	tok, err := auth.NewVerifier([]byte(testSigningKey)).Issue(identity.Caller{ID: "root", Role: identity.Admin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type ports struct {
	public, admin, observe http.Handler
	api                    *proxy.Handler
	backend                *recordingBackend
}

func testPorts(t *testing.T) ports {
	t.Helper()
	backend := newRecordingBackend(t)
	catalog, err := balancer.NewPool("catalog", []string{backend.URL}, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := balancer.NewPool("orders", []string{backend.URL}, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pools := []*balancer.Pool{catalog, orders}
	reg := prometheus.NewRegistry()
	reg.MustRegister(balancer.NewCollector("gateway", pools...))
	api := proxy.New(proxy.Config{
		Routes:         apiRoutes(catalog, orders),
		Transport:      http.DefaultTransport.(*http.Transport).Clone(),
		Verifier:       auth.NewVerifier([]byte(testSigningKey)),
		TryTimeout:     10 * time.Second,
		RequestTimeout: 10 * time.Second,
		MaxAttempts:    1,
		MaxBody:        1 << 20,
		DevTokens:      true,
		DevTokenTTL:    time.Hour,
		OpenAPI:        docs.OpenAPI(),
		Log:            slog.New(slog.DiscardHandler),
		Registry:       reg,
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return ports{
		public: publicRoutes(pools, api), admin: adminRoutes(pools, metrics), observe: observeRoutes(pools, metrics),
		api: api, backend: backend,
	}
}

// get follows the mux's redirects to cleaned paths, as a client would.
func get(h http.Handler, target string) *httptest.ResponseRecorder {
	for range 5 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		loc := w.Header().Get("Location")
		redirect := w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect || w.Code == http.StatusPermanentRedirect
		if !redirect || loc == "" {
			return w
		}
		u, err := url.Parse(loc)
		if err != nil {
			return w
		}
		target = u.RequestURI()
	}
	return httptest.NewRecorder()
}

// TestPublicPortServesNothingInternal: the gateway's metrics name every
// member's internal address and pprof shows its memory; on the public port
// they, the admin API and the services' /internal routes are all 404,
// however the path is spelled, and no such request reaches a backend.
func TestPublicPortServesNothingInternal(t *testing.T) {
	p := testPorts(t)
	public, backend := p.public, p.backend
	for _, path := range []string{
		"/metrics", "/metrics/", "/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline",
		"/admin/backends", "/internal/products?ids=1", "/internal/reservations",
		"/api/../metrics", "/api/products/../../internal/products?ids=1", "/api/products/%2e%2e/%2e%2e/internal/products",
		"/api/orders/..%2f..%2fmetrics", "//metrics", "/api/metrics", "/api/debug/pprof/",
	} {
		w := get(public, path)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s on the public port: %d, want 404; body %.200s", path, w.Code, w.Body)
		}
		if body := w.Body.String(); strings.Contains(body, backend.Listener.Addr().String()) || strings.Contains(body, "go_goroutines") {
			t.Errorf("GET %s on the public port shows internals: %.200s", path, body)
		}
	}
	for _, p := range backend.seen() {
		if !strings.HasPrefix(p, "/api/products") && !strings.HasPrefix(p, "/api/orders") {
			t.Errorf("a backend was asked for %s through the public port", p)
		}
	}

	// The same handler does route the API and answer the probes: the 404s
	// above are the rule, not a broken setup.
	for _, path := range []string{"/api/products/1", "/healthz", "/readyz"} {
		if w := get(public, path); w.Code != http.StatusOK {
			t.Errorf("GET %s on the public port: %d, want 200", path, w.Code)
		}
	}
	if seen := backend.seen(); len(seen) != 1 || seen[0] != "/api/products/1" {
		t.Errorf("the backend saw %q, want just /api/products/1", seen)
	}
}

func TestAdminPortServesMetricsAndProfiles(t *testing.T) {
	p := testPorts(t)
	adminPort, backend := p.admin, p.backend
	w := get(adminPort, "/metrics")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), backend.Listener.Addr().String()) {
		t.Errorf("admin /metrics: %d, want 200 with the members: %.300s", w.Code, w.Body)
	}
	if w := get(adminPort, "/debug/pprof/"); w.Code != http.StatusOK {
		t.Errorf("admin /debug/pprof/: %d, want 200", w.Code)
	}
	if w := get(adminPort, "/admin/backends"); w.Code != http.StatusOK {
		t.Errorf("admin /admin/backends: %d, want 200", w.Code)
	}
}

// TestObservePortOnlyReads: the observe port may face the pod network
// (infra/k8s), so it serves the pools and the metrics, and none of the
// admin API's changes nor the profiles.
func TestObservePortOnlyReads(t *testing.T) {
	p := testPorts(t)
	member := p.backend.Listener.Addr().String()
	if w := get(p.observe, "/metrics"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), member) {
		t.Errorf("observe /metrics: %d, want 200 with the members: %.300s", w.Code, w.Body)
	}
	if w := get(p.observe, "/admin/backends"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), member) {
		t.Errorf("observe /admin/backends: %d, want 200 with the members: %.300s", w.Code, w.Body)
	}
	if w := get(p.observe, "/debug/pprof/"); w.Code != http.StatusNotFound {
		t.Errorf("observe /debug/pprof/: %d, want 404", w.Code)
	}
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/admin/pools/catalog/members", strings.NewReader(`{"url":"http://10.0.0.9:8081"}`)),
		httptest.NewRequest(http.MethodPost, "/admin/pools/catalog/members/drain", strings.NewReader(`{"url":"http://`+member+`"}`)),
		httptest.NewRequest(http.MethodDelete, "/admin/pools/catalog/members?url=http://"+member, nil),
	} {
		w := httptest.NewRecorder()
		p.observe.ServeHTTP(w, r)
		if w.Code < 400 {
			t.Errorf("observe %s %s: %d, want it refused", r.Method, r.URL, w.Code)
		}
	}
	if w := get(p.observe, "/admin/backends"); !strings.Contains(w.Body.String(), member) || strings.Contains(w.Body.String(), "10.0.0.9") || strings.Contains(w.Body.String(), `"draining": true`) {
		t.Errorf("a request to the observe port changed the pool: %.500s", w.Body)
	}
}
