package httpserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/scaleshop/scaleshop/infra/config"
)

// ReadProfilerAddr reads PPROF_ADDR: where a service serves net/http/pprof,
// on a listener of its own, never on its API router. Empty (the default)
// serves nothing. Only a loopback address is accepted: a profile shows the
// process's memory, and taking one costs the service while it runs.
func ReadProfilerAddr(env *config.Env) string {
	addr := env.String("PPROF_ADDR", "")
	if addr != "" && !Loopback(addr) {
		env.Fail("PPROF_ADDR=%s must be a loopback address (127.0.0.1:port)", addr)
	}
	return addr
}

// ServeProfiler serves net/http/pprof on addr until ctx ends; with addr
// empty it returns at once.
func ServeProfiler(ctx context.Context, addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("pprof is served (PPROF_ADDR)", "addr", addr)
	return Serve(ctx, Server(addr, mux), time.Second)
}

// Loopback reports whether addr (host:port) names a loopback host: what
// every listener that must not face the network checks.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
