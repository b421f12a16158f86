package proxy

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// The gateway traces by hand rather than with otelhttp, in this one hot
// place. otelhttp's handler and transport compute every
// semantic-convention attribute of a request, wrap the response writer
// and the bodies, clone the request once more and record their metrics,
// whether the span is sampled or not. At the gateway's 1 % sampling that
// is work for spans nobody keeps: 9 % of its CPU a request in the profile
// of 4 December (docs/benchmarks.md), where it was over Caddy's by 4–12 %.
// Here a span that does not record costs its start and the propagation
// alone, and one that records gets the attributes a reader of the trace
// looks for. The services keep otelgin and otelhttp: a request there
// costs milliseconds of real work, not a proxy's hundred microseconds.

const tracerName = "github.com/scaleshop/scaleshop/gateway/internal/proxy"

// Traced wraps h in the gateway's server span: it continues the caller's
// trace (traceparent) or starts one, and a recorded span is named by name.
func Traced(h http.Handler, tp trace.TracerProvider, prop propagation.TextMapPropagator, name func(*http.Request) string) http.Handler {
	tracer := tp.Tracer(tracerName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		// The sampler (parent-based, then by trace id) needs no name, so
		// the route template is made only for a span that is kept.
		ctx, span := tracer.Start(ctx, "gateway", trace.WithSpanKind(trace.SpanKindServer))
		r = r.WithContext(ctx)
		if !span.IsRecording() {
			defer span.End()
			h.ServeHTTP(w, r)
			return
		}
		span.SetName(name(r))
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.ServerAddress(hostOf(r.Host)),
			semconv.ClientAddress(hostOf(r.RemoteAddr)),
			semconv.UserAgentOriginal(r.UserAgent()),
			semconv.NetworkProtocolVersion(strconv.Itoa(r.ProtoMajor)+"."+strconv.Itoa(r.ProtoMinor)),
		)
		sw := &statusWriter{ResponseWriter: w}
		// Deferred: the ReverseProxy panics with http.ErrAbortHandler when
		// the client goes away mid-body, and that span must end too.
		defer func() { endWithStatus(span, sw.status(), serverFailsFrom) }()
		h.ServeHTTP(sw, r)
	})
}

// tracedTransport gives each try to a member its client span and sends
// the span's context along. It writes the traceparent into the request's
// header, which a RoundTripper must not do to a caller's request: its one
// caller, balancingTransport.try, hands it a request of the exchange's
// own (the ReverseProxy's outgoing copy, or a clone on a retry).
type tracedTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newTracedTransport(next http.RoundTripper, tp trace.TracerProvider, prop propagation.TextMapPropagator) *tracedTransport {
	return &tracedTransport{next: next, tracer: tp.Tracer(tracerName), prop: prop}
}

func (t *tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient))
	t.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if !span.IsRecording() {
		span.End()
		return t.next.RoundTrip(req)
	}
	span.SetName("HTTP " + req.Method) // as otelhttp named it, apart from the server span
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.ServerAddress(hostOf(req.URL.Host)),
		semconv.URLFull(req.URL.String()),
	)
	if port, err := strconv.Atoi(req.URL.Port()); err == nil {
		span.SetAttributes(semconv.ServerPort(port))
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return nil, err
	}
	// The span lasts until the proxy has copied the body, as the member's
	// answer does: a slow body is the member's time, not the gateway's.
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span, status: resp.StatusCode}
	return resp, nil
}

// spanBody ends the try's span when the body is closed.
type spanBody struct {
	io.ReadCloser
	span   trace.Span
	status int
	once   sync.Once
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { endWithStatus(b.span, b.status, clientFailsFrom) })
	return err
}

// The semantic conventions' error statuses differ by end: a server's
// span fails on a 5xx only (a 4xx is its client's doing), a client's
// also on a 4xx (its request was refused). The gateway's try is the
// client of the member, so a member's 404 marks the try and not the
// gateway's own span, as otelhttp marked them.
const (
	serverFailsFrom = 500
	clientFailsFrom = 400
)

// endWithStatus records status on span, as an error from failsFrom on.
func endWithStatus(span trace.Span, status, failsFrom int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= failsFrom {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

func hostOf(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}
