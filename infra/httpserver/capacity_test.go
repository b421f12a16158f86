package httpserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

// limited is an engine with capacity c whose /work handler blocks until
// release is closed (or its request ends).
type limited struct {
	engine  *gin.Engine
	reg     *prometheus.Registry
	release chan struct{}
	started chan struct{}
}

func newLimited(t *testing.T, c Capacity) *limited {
	t.Helper()
	reg := prometheus.NewRegistry()
	tel := &telemetry.Telemetry{Config: telemetry.Config{Service: "test", Instance: "test-1"},
		Logger: telemetry.NewLogger(io.Discard, "test", "test-1"), Registry: reg}
	l := &limited{engine: NewEngine(tel, WithCapacity(c)), reg: reg,
		release: make(chan struct{}), started: make(chan struct{}, 100)}
	l.engine.GET("/work", func(gc *gin.Context) {
		l.started <- struct{}{}
		select {
		case <-l.release:
		case <-gc.Request.Context().Done():
		}
		gc.String(http.StatusOK, "done")
	})
	l.engine.GET("/quick", func(gc *gin.Context) { gc.String(http.StatusOK, "quick") })
	MountHealth(l.engine, reg, time.Second)
	return l
}

// serve sends one request in the background and delivers its answer.
func (l *limited) serve(ctx context.Context, path string) <-chan *httptest.ResponseRecorder {
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		l.engine.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))
		out <- rec
	}()
	return out
}

func (l *limited) metric(t *testing.T, name, label string) float64 {
	t.Helper()
	families, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// eventually polls cond until it holds or 2 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func receive(t *testing.T, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(2 * time.Second):
		t.Fatal("a request hung")
		return nil
	}
}

func TestCapacityLimitsConcurrencyAndQueues(t *testing.T) {
	l := newLimited(t, Capacity{MaxConcurrency: 2, MaxQueue: 4, QueueTimeout: 5 * time.Second})
	ctx := context.Background()
	first, second := l.serve(ctx, "/work"), l.serve(ctx, "/work")
	<-l.started
	<-l.started
	third := l.serve(ctx, "/work")
	eventually(t, "the third request to queue", func() bool { return l.metric(t, "http_server_queued_requests", "") == 1 })
	if got := l.metric(t, "http_server_in_flight_requests", ""); got != 2 {
		t.Fatalf("in flight = %v, want the limit 2", got)
	}
	select {
	case <-l.started:
		t.Fatal("a third request ran past a limit of 2")
	default:
	}
	// Probes are never limited: a full clone still answers its health check.
	if rec := receive(t, l.serve(ctx, "/healthz")); rec.Code != http.StatusOK {
		t.Fatalf("/healthz at capacity = %d, want 200", rec.Code)
	}
	close(l.release)
	for _, ch := range []<-chan *httptest.ResponseRecorder{first, second, third} {
		if rec := receive(t, ch); rec.Code != http.StatusOK {
			t.Fatalf("status %d, want 200 once slots free", rec.Code)
		}
	}
	eventually(t, "slots released", func() bool { return l.metric(t, "http_server_in_flight_requests", "") == 0 })
}

func TestCapacityFullQueueAnswers503ProblemWithRetryAfter(t *testing.T) {
	l := newLimited(t, Capacity{MaxConcurrency: 1, MaxQueue: 1, QueueTimeout: 5 * time.Second})
	ctx := context.Background()
	running := l.serve(ctx, "/work")
	<-l.started
	queued := l.serve(ctx, "/work")
	eventually(t, "one request queued", func() bool { return l.metric(t, "http_server_queued_requests", "") == 1 })

	start := time.Now()
	rec := receive(t, l.serve(ctx, "/quick"))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("past a full queue: status %d, Retry-After %q; want 503 with Retry-After 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the rejection took %s: a full queue must answer at once", took)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var body struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Status != 503 || body.Detail == "" {
		t.Errorf("body %s (%v), want a 503 problem with a detail", rec.Body, err)
	}
	if got := l.metric(t, "http_server_rejected_requests_total", "queue_full"); got != 1 {
		t.Errorf("rejected{queue_full} = %v, want 1", got)
	}
	close(l.release)
	receive(t, running)
	receive(t, queued)
}

func TestCapacityQueueWaitIsBounded(t *testing.T) {
	l := newLimited(t, Capacity{MaxConcurrency: 1, MaxQueue: 4, QueueTimeout: 50 * time.Millisecond})
	running := l.serve(context.Background(), "/work")
	<-l.started
	rec := receive(t, l.serve(context.Background(), "/quick"))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a wait past HTTP_QUEUE_TIMEOUT: status %d, want 503 with Retry-After", rec.Code)
	}
	if got := l.metric(t, "http_server_rejected_requests_total", "queue_timeout"); got != 1 {
		t.Errorf("rejected{queue_timeout} = %v, want 1", got)
	}
	close(l.release)
	receive(t, running)
}

func TestCapacityCancelledRequestStopsWaiting(t *testing.T) {
	t.Run("in the queue", func(t *testing.T) {
		l := newLimited(t, Capacity{MaxConcurrency: 1, MaxQueue: 4, QueueTimeout: time.Minute})
		running := l.serve(context.Background(), "/work")
		<-l.started
		ctx, cancel := context.WithCancel(context.Background())
		waiting := l.serve(ctx, "/quick")
		eventually(t, "the request to queue", func() bool { return l.metric(t, "http_server_queued_requests", "") == 1 })
		cancel()
		receive(t, waiting)
		if got := l.metric(t, "http_server_queued_requests", ""); got != 0 {
			t.Errorf("queued = %v after the client left, want 0", got)
		}
		if got := l.metric(t, "http_server_rejected_requests_total", "cancelled"); got != 1 {
			t.Errorf("rejected{cancelled} = %v, want 1", got)
		}
		// Its place is free: the slot goes to the next request once released.
		close(l.release)
		receive(t, running)
		if rec := receive(t, l.serve(context.Background(), "/quick")); rec.Code != http.StatusOK {
			t.Errorf("after a cancelled wait the next request got %d, want 200 (no slot leaked)", rec.Code)
		}
	})
}

func TestCapacityOffByDefault(t *testing.T) {
	l := newLimited(t, Capacity{})
	if rec := receive(t, l.serve(context.Background(), "/quick")); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if got := l.metric(t, "http_server_concurrency_limit", ""); got != 0 {
		t.Errorf("concurrency limit gauge = %v without settings, want 0", got)
	}
}

func TestReadCapacity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Capacity
		wantErr bool
	}{
		{"unset is off", nil, Capacity{QueueTimeout: time.Second}, false},
		{"a limit", map[string]string{"HTTP_MAX_CONCURRENCY": "4"},
			Capacity{MaxConcurrency: 4, MaxQueue: 16, QueueTimeout: time.Second}, false},
		{"explicit queue", map[string]string{"HTTP_MAX_CONCURRENCY": "2", "HTTP_MAX_QUEUE": "0", "HTTP_QUEUE_TIMEOUT": "200ms"},
			Capacity{MaxConcurrency: 2, QueueTimeout: 200 * time.Millisecond}, false},
		{"not a number", map[string]string{"HTTP_MAX_CONCURRENCY": "four"}, Capacity{}, true},
		{"negative", map[string]string{"HTTP_MAX_CONCURRENCY": "-1"}, Capacity{}, true},
		{"negative queue", map[string]string{"HTTP_MAX_CONCURRENCY": "2", "HTTP_MAX_QUEUE": "-1"}, Capacity{}, true},
		{"no queue timeout", map[string]string{"HTTP_MAX_CONCURRENCY": "2", "HTTP_QUEUE_TIMEOUT": "0s"}, Capacity{}, true},
		{"bad queue timeout", map[string]string{"HTTP_QUEUE_TIMEOUT": "soon"}, Capacity{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := config.New(func(k string) string { return tc.env[k] })
			got := ReadCapacity(env)
			if err := env.Err(); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
