package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracedGateway is a gateway whose spans go to a recorder, behind the
// server span a real gateway has.
func tracedGateway(t *testing.T, backendURL string) (http.Handler, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	prop := propagation.TraceContext{}
	g := newGateway(t, []string{backendURL}, []string{backendURL}, func(c *Config) {
		c.Tracing, c.Propagator = tp, prop
	})
	return Traced(g.h, tp, prop, func(r *http.Request) string { return r.Method + " " + Template(r.URL.Path) }), rec
}

// seenTraceparent is a fake clone that remembers the traceparent it got.
func seenTraceparent(t *testing.T, status int) (url string, got func() string) {
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Get("Traceparent")
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() string { mu.Lock(); defer mu.Unlock(); return last }
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// TestAKeptTraceGoesCallerGatewayMember: a sampled caller's trace runs on
// through the gateway's server span and its try's client span to the
// member, each the child of the one before, named and with status codes:
// a member's 4xx fails the try's client span only, a 5xx both.
func TestAKeptTraceGoesCallerGatewayMember(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNotFound, http.StatusInternalServerError} {
		url, got := seenTraceparent(t, status)
		h, rec := tracedGateway(t, url)
		r := httptest.NewRequest("GET", "/api/products/42", nil)
		r.Header.Set("Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != status {
			t.Fatalf("status %d, want the member's %d", w.Code, status)
		}
		spans := map[trace.SpanKind]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			spans[s.SpanKind()] = s
		}
		server, client := spans[trace.SpanKindServer], spans[trace.SpanKindClient]
		if len(rec.Ended()) != 2 || server == nil || client == nil {
			t.Fatalf("ended spans %d (%v), want one server and one client span", len(rec.Ended()), spans)
		}
		if server.SpanContext().TraceID().String() != callerTrace || server.Parent().SpanID().String() != callerSpan {
			t.Errorf("server span in trace %s under %s, want the caller's %s under %s",
				server.SpanContext().TraceID(), server.Parent().SpanID(), callerTrace, callerSpan)
		}
		if client.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("the try's span is not the server span's child")
		}
		if want := "00-" + callerTrace + "-" + client.SpanContext().SpanID().String() + "-01"; got() != want {
			t.Errorf("the member got traceparent %q, want %q (the try's span, sampled)", got(), want)
		}
		if server.Name() != "GET /api/products/{id}" {
			t.Errorf("server span named %q", server.Name())
		}
		for _, s := range []sdktrace.ReadOnlySpan{server, client} {
			code := int64(0)
			for _, a := range s.Attributes() {
				if a.Key == "http.response.status_code" {
					code = a.Value.AsInt64()
				}
			}
			if code != int64(status) {
				t.Errorf("%s span: http.response.status_code %d, want %d", s.SpanKind(), code, status)
			}
			failsFrom := 500
			if s.SpanKind() == trace.SpanKindClient {
				failsFrom = 400
			}
			if isErr := s.Status().Code == codes.Error; isErr != (status >= failsFrom) {
				t.Errorf("%s span for a %d: error status %v", s.SpanKind(), status, isErr)
			}
		}
	}
}

// TestADroppedTraceStillReachesTheMember: a request the caller did not
// sample records nothing at the gateway, yet the member still learns its
// trace and that it is not sampled, so it does not start one of its own.
func TestADroppedTraceStillReachesTheMember(t *testing.T) {
	url, got := seenTraceparent(t, http.StatusOK)
	h, rec := tracedGateway(t, url)
	r := httptest.NewRequest("GET", "/api/products/42", nil)
	r.Header.Set("Traceparent", "00-"+callerTrace+"-"+callerSpan+"-00")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled request", n)
	}
	if tp := got(); len(tp) != 55 || tp[3:35] != callerTrace || tp[53:] != "00" {
		t.Errorf("the member got traceparent %q, want the caller's trace %s, not sampled (00)", tp, callerTrace)
	}
	if w.Header().Get("X-Trace-Id") != callerTrace {
		t.Errorf("X-Trace-Id %q, want the caller's trace %s", w.Header().Get("X-Trace-Id"), callerTrace)
	}
}
