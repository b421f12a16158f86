package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingQueue sits in front of a batch span processor that blocks when
// full. The SDK's batch processor drops spans silently once its queue is
// full (its counter is internal); this queue drops the same way, without
// ever blocking a request, but counts every drop in
// otel_spans_dropped_total so a load test can tell its traces are partial.
type countingQueue struct {
	next     sdktrace.SpanProcessor
	spans    chan sdktrace.ReadOnlySpan
	queued   prometheus.Counter
	dropped  prometheus.Counter
	drained  chan struct{}
	mu       sync.RWMutex // guards closed against OnEnd racing Shutdown
	closed   bool
	shutdown sync.Once
}

func newCountingQueue(next sdktrace.SpanProcessor, size int, reg prometheus.Registerer) *countingQueue {
	q := &countingQueue{
		next:  next,
		spans: make(chan sdktrace.ReadOnlySpan, size),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otel_spans_queued_total",
			Help: "Sampled spans handed to the exporter queue.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otel_spans_dropped_total",
			Help: "Sampled spans dropped because the exporter queue was full.",
		}),
		drained: make(chan struct{}),
	}
	reg.MustRegister(q.queued, q.dropped, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "otel_span_queue_length",
		Help: "Spans waiting in the exporter queue.",
	}, func() float64 { return float64(len(q.spans)) }))
	go q.forward()
	return q
}

func (q *countingQueue) forward() {
	defer close(q.drained)
	for s := range q.spans {
		q.next.OnEnd(s)
	}
}

func (q *countingQueue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (q *countingQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() { // recorded for processors only, never exported
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return
	}
	select {
	case q.spans <- s:
		q.queued.Inc()
	default:
		q.dropped.Inc()
	}
}

// ForceFlush waits for this queue to drain into the batch processor, then
// flushes that.
func (q *countingQueue) ForceFlush(ctx context.Context) error {
	for len(q.spans) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return q.next.ForceFlush(ctx)
}

func (q *countingQueue) Shutdown(ctx context.Context) error {
	q.shutdown.Do(func() {
		q.mu.Lock()
		q.closed = true
		close(q.spans)
		q.mu.Unlock()
	})
	select {
	case <-q.drained:
	case <-ctx.Done():
		return ctx.Err()
	}
	return q.next.Shutdown(ctx)
}

// countingExporter counts the spans of each batch that the exporter could
// not deliver after its own retries: Jaeger not started yet (its first
// build runs while the stack already serves), or gone. The batch processor
// drops such a batch; otel_spans_export_failed_total says how many spans
// that cost.
type countingExporter struct {
	sdktrace.SpanExporter
	failed prometheus.Counter
}

func newCountingExporter(next sdktrace.SpanExporter, reg prometheus.Registerer) *countingExporter {
	e := &countingExporter{SpanExporter: next, failed: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "otel_spans_export_failed_total",
		Help: "Sampled spans lost because their export failed (the trace backend unreachable) after the exporter's retries.",
	})}
	reg.MustRegister(e.failed)
	return e
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.failed.Add(float64(len(spans)))
	}
	return err
}
