package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"go.opentelemetry.io/otel"

	"github.com/scaleshop/scaleshop/gateway/internal/admin"
	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/balancer"
)

// apiRoutes is what the gateway forwards, and to which pool. Everything else
// under /api it answers itself (proxy.DevTokenPath, proxy.OpenAPIPath) or
// with 404. docs/openapi.yaml documents the services' routes under these
// prefixes; contract_test.go holds the two to each other.
func apiRoutes(catalog, orders *balancer.Pool) []proxy.Route {
	return []proxy.Route{
		{Prefix: "/api/products", Pool: catalog, Access: proxy.CatalogAccess},
		{Prefix: "/api/orders", Pool: orders, Access: proxy.OrdersAccess},
	}
}

// publicRoutes is the whole public port: the API (api) and the two probes
// that whatever sits in front of the gateway (a load balancer, stackctl)
// asks. Nothing internal is here: /metrics names every backend member's
// address and pprof shows the process's memory, so both live on the
// loopback admin port alone (adminRoutes), and every other path is the
// API's 404.
func publicRoutes(pools []*balancer.Pool, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	for pattern, probe := range probes(pools) {
		mux.HandleFunc(pattern, probe)
	}
	mux.Handle("/", proxy.Traced(api, otel.GetTracerProvider(), otel.GetTextMapPropagator(), spanName))
	return mux
}

// probes are the two routes of the public port outside /api.
func probes(pools []*balancer.Pool) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /healthz": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		},
		"GET /readyz": func(w http.ResponseWriter, _ *http.Request) {
			for _, p := range pools {
				if !p.Ready() {
					writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "pool": p.Name})
					return
				}
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		},
	}
}

// adminRoutes is the operator's port (loopback only): the pools, the
// gateway's own metrics, and profiles of where its CPU goes.
func adminRoutes(pools []*balancer.Pool, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	admin.Routes(mux, pools, proxy.WriteError)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

// observeRoutes is the optional observe port (GATEWAY_OBSERVE_ADDR): what
// a console and a Prometheus in other pods read, and nothing that changes
// the pools or shows the process's memory. It may listen off loopback; a
// NetworkPolicy decides who reaches it (infra/k8s).
func observeRoutes(pools []*balancer.Pool, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	admin.ReadRoutes(mux, pools)
	mux.Handle("GET /metrics", metrics)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
