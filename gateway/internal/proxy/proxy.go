// Package proxy is the gateway's public handler: routing, authentication
// and authorisation, rate limits, body limits, request ids, and the
// balanced, retrying reverse proxy to the backend pools.
package proxy

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/gateway/internal/auth"
	"github.com/scaleshop/scaleshop/gateway/internal/ratelimit"
	"github.com/scaleshop/scaleshop/infra/balancer"
	"github.com/scaleshop/scaleshop/infra/identity"
	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

// DevTokenPath is served by the gateway itself, in dev mode only.
const DevTokenPath = "/api/auth/dev-token"

// Config is everything the handler needs.
type Config struct {
	Routes    []Route
	Transport http.RoundTripper // shared by every pool; New wraps the try's span around it
	// Tracing and Propagator make the spans and carry their context to
	// the members (nil: OpenTelemetry's global ones).
	Tracing    trace.TracerProvider
	Propagator propagation.TextMapPropagator
	Verifier   *auth.Verifier
	Limiter    *ratelimit.Limiter // nil: no rate limit

	TryTimeout     time.Duration // per try, until response headers
	RequestTimeout time.Duration // overall, retries and body included
	MaxAttempts    int           // first try included
	RetryRatio     float64       // retry budget: retries ≤ this × recent requests (+ RetryMin)
	RetryMin       int           // retries per 10 s always allowed
	MaxBody        int64         // larger bodies get 413

	DevTokens   bool // serve DevTokenPath (dev mode)
	DevTokenTTL time.Duration

	OpenAPI []byte // served at OpenAPIPath; nil serves nothing there

	Log             *slog.Logger
	AccessLogSample float64 // share of successful requests logged; errors always are
	Registry        prometheus.Registerer
}

// Handler is the gateway's public handler.
type Handler struct {
	cfg      Config
	proxy    *httputil.ReverseProxy
	budgets  map[*balancer.Pool]*balancer.RetryBudget
	devToken http.HandlerFunc
	openAPI  http.HandlerFunc
	metrics  *metrics
}

// New builds the handler.
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, budgets: map[*balancer.Pool]*balancer.RetryBudget{}, metrics: newMetrics(cfg.Registry)}
	for _, rt := range cfg.Routes {
		if h.budgets[rt.Pool] == nil {
			h.budgets[rt.Pool] = balancer.NewRetryBudget(cfg.RetryRatio, cfg.RetryMin, 10*time.Second)
		}
	}
	if cfg.DevTokens {
		h.devToken = auth.DevTokenHandler(cfg.Verifier, cfg.DevTokenTTL, writeError)
	}
	if cfg.OpenAPI != nil {
		h.openAPI = openAPIHandler(cfg.OpenAPI)
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The transport puts the chosen member's address in; this
			// placeholder names the pool until then.
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", exchangeFrom(pr.In.Context()).route.Pool.Name
			pr.SetXForwarded()
		},
		Transport: &balancingTransport{
			next:       newTracedTransport(cfg.Transport, cfg.tracing(), cfg.propagator()),
			tryTimeout: cfg.TryTimeout, maxAttempts: max(cfg.MaxAttempts, 1), metrics: h.metrics,
		},
		BufferPool: NewBufferPool(),
		ModifyResponse: func(resp *http.Response) error {
			// The gateway's own ids are already on the response.
			resp.Header.Del("X-Request-Id")
			resp.Header.Del("X-Trace-Id")
			return nil
		},
		ErrorHandler: h.upstreamError,
	}
	return h
}

func (c Config) tracing() trace.TracerProvider {
	if c.Tracing == nil {
		return otel.GetTracerProvider()
	}
	return c.Tracing
}

func (c Config) propagator() propagation.TextMapPropagator {
	if c.Propagator == nil {
		return otel.GetTextMapPropagator()
	}
	return c.Propagator
}

// OwnRoutes lists the routes the handler answers itself rather than
// forwarding ("POST /api/auth/dev-token"), for the contract test.
func (h *Handler) OwnRoutes() []string {
	var own []string
	if h.devToken != nil {
		own = append(own, http.MethodPost+" "+DevTokenPath)
	}
	if h.openAPI != nil {
		own = append(own, http.MethodGet+" "+OpenAPIPath)
	}
	return own
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if !validRequestID(reqID) {
		reqID = newRequestID()
		r.Header.Set("X-Request-Id", reqID)
	}
	w.Header().Set("X-Request-Id", reqID)
	if id := telemetry.TraceID(r.Context()); id != "" {
		w.Header().Set("X-Trace-Id", id)
	}
	// Identity comes from the token alone, never from the client.
	identity.Strip(r.Header)

	sw := &statusWriter{ResponseWriter: w}
	x := h.serve(sw, r)
	pool := "none"
	if x != nil {
		pool = x.route.Pool.Name
	}
	h.metrics.requests.WithLabelValues(pool, strconv.Itoa(sw.status())).Inc()
	h.metrics.duration.WithLabelValues(pool).Observe(time.Since(start).Seconds())
	h.accessLog(r, sw.status(), start, reqID, x)
}

// serve answers r; it returns the exchange when r was proxied.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) *exchange {
	if r.URL.Path == DevTokenPath && h.devToken != nil {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", DevTokenPath))
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, r, problem.Errorf(problem.ErrMethodNotAllowed, "POST a JSON body"))
			return nil
		}
		h.devToken(w, r)
		return nil
	}
	if r.URL.Path == OpenAPIPath && h.openAPI != nil {
		h.openAPI(w, r)
		return nil
	}
	route := matchRoute(h.cfg.Routes, r.URL.Path)
	if route == nil {
		writeError(w, r, problem.Errorf(problem.ErrNotFound, "no such route"))
		return nil
	}
	// The public mux routes everything through one "/" pattern; the span
	// names the route taken. Only a recorded span is given attributes: at
	// 1 % sampling, building them for the rest was most of their cost.
	span := trace.SpanFromContext(r.Context())
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.route", Template(r.URL.Path)))
	}
	id, status := h.authenticate(r)
	if status == 0 {
		status = route.Access(r, id)
	}
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="scaleshop"`)
		writeError(w, r, problem.Errorf(problem.ErrUnauthorized, "a valid bearer token is required"))
		return nil
	case http.StatusForbidden:
		writeError(w, r, problem.Errorf(problem.ErrForbidden, "your role may not do this"))
		return nil
	}
	limit := h.cfg.Limiter.Allow(rateKey(r, id))
	limit.SetHeaders(w.Header())
	if !limit.Allowed {
		h.metrics.rateLimited.Inc()
		writeError(w, r, problem.RetryAfter(
			problem.Errorf(problem.ErrRateLimited, "rate limit exceeded; retry after the time in Retry-After"), limit.RetryAfter))
		return nil
	}
	if !h.bufferBody(w, r) {
		return nil
	}
	if id != nil {
		identity.Set(r.Header, *id)
	}

	x := &exchange{route: route, budget: h.budgets[route.Pool], start: time.Now(), longPoll: longPollWait(r)}
	// A long poll's answer is due at the end of its wait: the deadline
	// covers the wait on top of the usual allowance.
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), exchangeKey{}, x), h.cfg.RequestTimeout+x.longPoll)
	defer cancel()
	h.proxy.ServeHTTP(w, r.WithContext(ctx))

	if span.IsRecording() {
		span.SetAttributes(attribute.String("scaleshop.pool", route.Pool.Name), attribute.Int("scaleshop.retries", x.retries))
		if x.member != nil {
			span.SetAttributes(attribute.String("scaleshop.member", x.member.Label()))
			if name := x.member.Name(); name != "" {
				span.SetAttributes(attribute.String("scaleshop.member.name", name))
			}
		}
	}
	return x
}

// MaxLongPoll is the longest ?wait= the gateway gives more time for; the
// orders service caps its waits at the same 10 s (docs/orders.md).
const MaxLongPoll = 10 * time.Second

// longPollWait is how long a GET with ?wait= may be held by the member
// before it answers (0: not a long poll). A malformed wait is no long poll:
// the service answers it with a 400 at once.
func longPollWait(r *http.Request) time.Duration {
	if r.Method != http.MethodGet {
		return 0
	}
	raw := r.URL.Query().Get("wait")
	if raw == "" {
		return 0
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		return 0
	}
	return min(d, MaxLongPoll)
}

// authenticate returns the caller's identity (nil when anonymous), or 401
// when a token is present but bad: a client that sends a token means to be
// someone, and must learn that its token is expired or forged.
func (h *Handler) authenticate(r *http.Request) (*identity.Caller, int) {
	tok, present, err := auth.BearerToken(r)
	if !present {
		return nil, 0
	}
	if err != nil {
		return nil, http.StatusUnauthorized
	}
	id, err := h.cfg.Verifier.Verify(tok)
	if err != nil {
		return nil, http.StatusUnauthorized
	}
	return &id, 0
}

func rateKey(r *http.Request, id *identity.Caller) string {
	if id != nil {
		return "user:" + id.ID
	}
	return "ip:" + hostOf(r.RemoteAddr)
}

// bufferBody reads a request body of at most MaxBody into memory, so a
// retry can send it again; past the limit it answers 413.
func (h *Handler) bufferBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	tooLarge := problem.Errorf(problem.ErrTooLarge, "the body is larger than %d bytes", h.cfg.MaxBody)
	if r.ContentLength > h.cfg.MaxBody {
		writeError(w, r, tooLarge)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var overLimit *http.MaxBytesError
		if errors.As(err, &overLimit) {
			writeError(w, r, tooLarge)
		} else {
			writeError(w, r, problem.Errorf(problem.ErrInvalid, "could not read the request body"))
		}
		return false
	}
	r.ContentLength = int64(len(body))
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return true
}

// upstreamError answers when no member gave a usable response: 503 when
// the pool has no healthy member, 504 on timeouts, else 502.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	var answer error
	switch pool := x.route.Pool.Name; {
	case errors.Is(err, errNoMember):
		answer = problem.Errorf(problem.ErrUnavailable, "no healthy %s instance; retry later", pool)
	case errors.Is(err, errTryTimeout), errors.Is(err, context.DeadlineExceeded):
		answer = problem.Errorf(problem.ErrGatewayTimeout, "the %s service did not answer in time", pool)
	case errors.Is(err, context.Canceled):
		w.WriteHeader(499) // the client left; nobody reads this
		return
	default:
		answer = problem.Errorf(problem.ErrBadGateway, "the %s service did not answer", pool)
	}
	if h.cfg.Log.Enabled(r.Context(), slog.LevelDebug) {
		h.cfg.Log.DebugContext(r.Context(), "upstream failed", "err", err)
	}
	writeError(w, r, answer)
}

func (h *Handler) accessLog(r *http.Request, status int, start time.Time, reqID string, x *exchange) {
	if status < 500 && (h.cfg.AccessLogSample <= 0 || rand.Float64() >= h.cfg.AccessLogSample) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)),
		slog.String("request_id", reqID),
	}
	if x != nil && x.member != nil {
		attrs = append(attrs, slog.String("member", x.member.Label()), slog.String("member_name", x.member.Name()), slog.Int("retries", x.retries))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	h.cfg.Log.LogAttrs(r.Context(), level, "access", attrs...)
}

// WriteError answers err as problem+json, its status from the one table in
// infra/problem, stamped with the request's trace id and path; the
// gateway's other handlers use it too, so every error has one shape.
func WriteError(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, err) }

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	d := problem.From(err)
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
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status code for metrics and the access log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type bufferPool struct{ sync.Pool }

// NewBufferPool avoids ReverseProxy's 32 KiB allocation per response.
func NewBufferPool() httputil.BufferPool {
	return &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.Pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.Pool.Put(&b) }
