// Package proxy routes public API requests to the backend pools.
package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

// Route sends every path under Prefix to Pool.
type Route struct {
	Prefix string
	Pool   *balancer.Pool
}

// Handler is the gateway's public handler.
type Handler struct {
	routes []Route
	proxy  *httputil.ReverseProxy
	log    *slog.Logger
}

type memberKey struct{}

// New builds the handler over one shared transport.
func New(routes []Route, transport http.RoundTripper, log *slog.Logger) *Handler {
	h := &Handler{routes: routes, log: log}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			m := pr.In.Context().Value(memberKey{}).(*balancer.Member)
			pr.SetURL(m.URL)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Request-Id", pr.In.Header.Get("X-Request-Id"))
		},
		Transport:  transport,
		BufferPool: newBufferPool(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.log.WarnContext(r.Context(), "upstream failed", "err", err)
			writeProblem(w, r, problem.New(http.StatusBadGateway, "the upstream service did not answer"))
		},
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-Id")
	if !validRequestID(reqID) {
		reqID = newRequestID()
		r.Header.Set("X-Request-Id", reqID)
	}
	w.Header().Set("X-Request-Id", reqID)
	if id := telemetry.TraceID(r.Context()); id != "" {
		w.Header().Set("X-Trace-Id", id)
	}
	pool := h.route(r.URL.Path)
	if pool == nil {
		writeProblem(w, r, problem.New(http.StatusNotFound, "no such route"))
		return
	}
	m, err := pool.Pick()
	if err != nil {
		writeProblem(w, r, problem.New(http.StatusServiceUnavailable, "no healthy "+pool.Name+" instance"))
		return
	}
	lease := m.Acquire()
	defer lease.Done(balancer.Success)
	trace.SpanFromContext(r.Context()).SetAttributes(
		attribute.String("scaleshop.pool", pool.Name),
		attribute.String("scaleshop.member", m.URL.Host))
	ctx := r.Context()
	r = r.WithContext(contextWithMember(ctx, m))
	h.proxy.ServeHTTP(w, r)
}

func (h *Handler) route(path string) *balancer.Pool {
	for _, rt := range h.routes {
		if path == rt.Prefix || strings.HasPrefix(path, rt.Prefix+"/") {
			return rt.Pool
		}
	}
	return nil
}

func writeProblem(w http.ResponseWriter, r *http.Request, d problem.Details) {
	d.TraceID = telemetry.TraceID(r.Context())
	d.Instance = r.URL.Path
	problem.Write(w, d)
}

// validRequestID keeps a client's id only when it is short and printable,
// so it cannot inject anything into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type bufferPool struct{ sync.Pool }

// newBufferPool avoids ReverseProxy's 32 KiB allocation per response.
func newBufferPool() *bufferPool {
	return &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.Pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.Pool.Put(&b) }
