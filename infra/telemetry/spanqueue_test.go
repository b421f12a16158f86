package telemetry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// stuckProcessor stands in for a batch processor whose exporter is stuck:
// OnEnd blocks until released.
type stuckProcessor struct {
	release chan struct{}
	got     atomic.Int64
}

func (p *stuckProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *stuckProcessor) OnEnd(sdktrace.ReadOnlySpan)                     { <-p.release; p.got.Add(1) }
func (p *stuckProcessor) Shutdown(context.Context) error                  { return nil }
func (p *stuckProcessor) ForceFlush(context.Context) error                { return nil }

func TestCountingQueueDropsAndCountsInsteadOfBlocking(t *testing.T) {
	next := &stuckProcessor{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	q := newCountingQueue(next, 10, reg)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	tracer := tp.Tracer("test")

	start := time.Now()
	for range 100 {
		_, span := tracer.Start(context.Background(), "work")
		span.End()
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("ending spans blocked for %v while the exporter was stuck", took)
	}
	// One span may sit in the stuck processor, 10 in the queue; the rest drop.
	dropped := testutil.ToFloat64(q.dropped)
	queued := testutil.ToFloat64(q.queued)
	if dropped+queued != 100 || dropped < 89 {
		t.Fatalf("queued %v + dropped %v, want 100 with at least 89 dropped", queued, dropped)
	}

	close(next.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := next.got.Load(); got != int64(queued) {
		t.Fatalf("shutdown forwarded %d spans, want every queued one (%v)", got, queued)
	}
	// Spans ended after shutdown are ignored, not a panic on a closed queue.
	_, span := tracer.Start(context.Background(), "late")
	span.End()
}

func TestCountingQueueSkipsUnsampledSpans(t *testing.T) {
	next := &stuckProcessor{release: make(chan struct{})}
	close(next.release)
	q := newCountingQueue(next, 10, prometheus.NewRegistry())
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q), sdktrace.WithSampler(recordOnly{}))
	_, span := tp.Tracer("test").Start(context.Background(), "recorded, not sampled")
	span.End()
	_ = tp.Shutdown(context.Background())
	if testutil.ToFloat64(q.queued) != 0 || next.got.Load() != 0 {
		t.Fatal("an unsampled span reached the exporter")
	}
}

// recordOnly records spans without sampling them: processors see them, the
// exporter must not.
type recordOnly struct{}

func (recordOnly) ShouldSample(sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly}
}
func (recordOnly) Description() string { return "record only" }

// failingExporter stands in for an OTLP exporter whose backend is not
// listening: every export fails.
type failingExporter struct{ calls atomic.Int64 }

func (e *failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	e.calls.Add(1)
	return errors.New("connection refused")
}
func (e *failingExporter) Shutdown(context.Context) error { return nil }

func TestCountingExporterCountsSpansOfFailedExports(t *testing.T) {
	next := &failingExporter{}
	exp := newCountingExporter(next, prometheus.NewRegistry())
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	for range 3 {
		_, span := tp.Tracer("test").Start(context.Background(), "before jaeger")
		span.End()
	}
	_ = tp.Shutdown(context.Background())
	if got := testutil.ToFloat64(exp.failed); got != 3 || next.calls.Load() != 3 {
		t.Fatalf("otel_spans_export_failed_total = %v after %d failed exports of one span, want 3", got, next.calls.Load())
	}
}
