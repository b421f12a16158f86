package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"

	"github.com/scaleshop/scaleshop/gateway/internal/admin"
	"github.com/scaleshop/scaleshop/gateway/internal/proxy"
	"github.com/scaleshop/scaleshop/infra/balancer"
)

// publicRoutes is the whole public port: the API (api) and the two probes
// that whatever sits in front of the gateway (a load balancer, stackctl)
// asks. Nothing internal is here: /metrics names every backend member's
// address and pprof shows the process's memory, so both live on the
// loopback admin port alone (adminRoutes), and every other path is the
// API's 404.
func publicRoutes(pools []*balancer.Pool, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		for _, p := range pools {
			if !p.Ready() {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "pool": p.Name})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	// Both otelhttp wrappers get the tracer provider up front; left to find
	// it themselves they look a tracer up on every request (2 % of the
	// gateway's CPU in pprof).
	mux.Handle("/", otelhttp.NewHandler(api, "gateway", otelhttp.WithSpanNameFormatter(spanName),
		otelhttp.WithTracerProvider(otel.GetTracerProvider())))
	return mux
}

// adminRoutes is the operator's port (loopback only): the pools, the
// gateway's own metrics, and profiles of where its CPU goes.
func adminRoutes(pools []*balancer.Pool, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	admin.Routes(mux, pools, proxy.WriteProblem)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
