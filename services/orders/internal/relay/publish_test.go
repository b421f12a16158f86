package relay

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type failingPublisher struct{ err error }

func (p failingPublisher) WriteMessages(context.Context, ...kafka.Message) error { return p.err }

// TestFailedPublishMarksEverySpanAsError: a publish the broker refused
// shows as an error in each row's publish span, with the broker's error,
// not as a plain 500 ms span among the others.
func TestFailedPublishMarksEverySpanAsError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"refused", errors.New("kafka: leader not available")},
		{"accepted", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
			r := New(nil, failingPublisher{tc.err}, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			var spans []trace.Span
			for range 3 {
				_, span := tracer.Start(context.Background(), "publish orders.placed")
				spans = append(spans, span)
			}
			err := r.publish(context.Background(), make([]kafka.Message, 3), spans)
			if (err != nil) != (tc.err != nil) {
				t.Fatalf("publish returned %v, want an error: %v", err, tc.err != nil)
			}
			ended := rec.Ended()
			if len(ended) != 3 {
				t.Fatalf("%d spans ended, want 3", len(ended))
			}
			for _, s := range ended {
				switch {
				case tc.err != nil && s.Status().Code != codes.Error:
					t.Fatalf("span status %v after a failed publish, want Error", s.Status())
				case tc.err != nil && (len(s.Events()) == 0 || !strings.Contains(eventText(s), "leader not available")):
					t.Fatalf("span events %v do not carry the broker's error", s.Events())
				case tc.err == nil && s.Status().Code == codes.Error:
					t.Fatal("a successful publish marked as an error")
				}
			}
		})
	}
}

func eventText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, e := range s.Events() {
		for _, a := range e.Attributes {
			b.WriteString(a.Value.String())
		}
	}
	return b.String()
}

// TestLeaderGaugeExportsEveryShard: a clone that leads no shard still
// exports orders_relay_leader 0 for each, so "who leads shard 3" always has
// an answer on every clone.
func TestLeaderGaugeExportsEveryShard(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(make([]*sql.DB, 8), failingPublisher{}, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if n := testutil.CollectAndCount(reg, "orders_relay_leader"); n != 8 {
		t.Fatalf("%d orders_relay_leader series before leading anything, want 8 (one per shard, 0)", n)
	}
}
