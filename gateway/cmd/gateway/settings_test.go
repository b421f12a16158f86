package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		devMode bool
	}{
		{"dev defaults", nil, "", true},
		{"production with the dev key", map[string]string{"SCALESHOP_MODE": "production"}, "documented dev key", false},
		{"production with a short key", map[string]string{"SCALESHOP_MODE": "staging", "JWT_SIGNING_KEY": "short"}, "at least 32 bytes", false},
		{"production with a real key", map[string]string{"SCALESHOP_MODE": "production", "JWT_SIGNING_KEY": strings.Repeat("k", 32)}, "", false},
		{"admin off loopback", map[string]string{"GATEWAY_ADMIN_ADDR": "0.0.0.0:9080"}, "loopback only", true},
		{"admin on ::1", map[string]string{"GATEWAY_ADMIN_ADDR": "[::1]:9080"}, "", true},
		{"observe off loopback", map[string]string{"GATEWAY_OBSERVE_ADDR": "0.0.0.0:9081"}, "", true},
		{"unknown policy", map[string]string{"GATEWAY_CATALOG_POLICY": "random"}, "unknown balancing policy", true},
		{"retry budget above 1", map[string]string{"GATEWAY_RETRY_BUDGET": "1.5"}, "GATEWAY_RETRY_BUDGET", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, effective, err := readSettings(func(k string) string { return tc.env[k] })
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if s.devMode != tc.devMode {
				t.Errorf("dev mode = %v", s.devMode)
			}
			for _, line := range effective {
				if strings.HasPrefix(line, "JWT_SIGNING_KEY=") && line != "JWT_SIGNING_KEY=****" {
					t.Errorf("the signing key is logged: %s", line)
				}
			}
		})
	}
}

func TestSpanNamesStayFew(t *testing.T) {
	for path, want := range map[string]string{
		"/api/products":       "GET /api/products",
		"/api/products/42":    "GET /api/products/{id}",
		"/api/orders/9/items": "GET /api/orders/{id}",
		"/internal/stock":     "GET /internal/stock",
	} {
		r := httptestRequest(path)
		if got := spanName(r); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func httptestRequest(path string) *http.Request { return httptest.NewRequest("GET", path, nil) }
