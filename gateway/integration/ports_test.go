package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

func status(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPublicPortServesOnlyTheAPI: the running gateway's public port answers
// 404 to its own metrics and profiles and to the services' internal routes,
// however the path is spelled; the admin port (loopback) serves them.
func TestPublicPortServesOnlyTheAPI(t *testing.T) {
	stack := stacktest.Require(t)
	public, adminURL := stack.Endpoints.GatewayURL, stack.Endpoints.GatewayAdminURL
	for _, path := range []string{
		"/metrics", "/debug/pprof/", "/debug/pprof/profile?seconds=1", "/admin/backends",
		"/internal/products?ids=1", "/api/products/%2e%2e/%2e%2e/internal/products?ids=1",
		"/api/orders/..%2f..%2fmetrics",
	} {
		code, body := status(t, public+path)
		if code != http.StatusNotFound {
			t.Errorf("public GET %s: %d, want 404: %.200s", path, code, body)
		}
		for _, leak := range []string{"go_goroutines", "gateway_member", "127.0.0.1:"} {
			if strings.Contains(body, leak) {
				t.Errorf("public GET %s shows %q: %.200s", path, leak, body)
			}
		}
	}
	if code, _ := status(t, public+"/api/products?limit=1"); code != http.StatusOK {
		t.Errorf("public GET /api/products: %d, want 200", code)
	}
	if code, body := status(t, adminURL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "gateway_") {
		t.Errorf("admin GET /metrics: %d, want 200 with the gateway's metrics", code)
	}
}
