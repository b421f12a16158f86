// Package telemetry sets up the three signals every scaleshop process emits:
// traces (OpenTelemetry, OTLP to Jaeger), metrics (Prometheus text at
// /metrics) and logs (slog JSON carrying the trace and span ids).
//
// The OpenTelemetry providers are the one accepted global: they are set once,
// in run, by Setup, and flushed last on shutdown.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/scaleshop/scaleshop/infra/config"
)

// Config is what a process says about itself and where its spans go.
// It is read from the standard OTEL_* variables.
type Config struct {
	Service  string // service.name, e.g. "catalog"
	Instance string // service.instance.id, e.g. "catalog-1": which clone
	// Endpoint is the OTLP gRPC endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); empty
	// or OTEL_TRACES_EXPORTER=none disables export.
	Endpoint string
	// SampleRatio is used by the root of a trace only (parent-based), so the
	// gateway decides and every downstream hop follows.
	SampleRatio float64
	MaxQueue    int // spans buffered before the batch processor drops them
}

// ReadConfig reads the OpenTelemetry variables.
func ReadConfig(env *config.Env, service, defaultInstance string) Config {
	cfg := Config{
		Service:     env.String("OTEL_SERVICE_NAME", service),
		Instance:    env.String("SERVICE_INSTANCE_ID", defaultInstance),
		Endpoint:    env.String("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
		SampleRatio: env.Float("OTEL_TRACES_SAMPLER_ARG", 1.0),
		MaxQueue:    env.Int("OTEL_BSP_MAX_QUEUE_SIZE", 8192),
	}
	if env.String("OTEL_TRACES_EXPORTER", "otlp") == "none" {
		cfg.Endpoint = ""
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		env.Fail("OTEL_TRACES_SAMPLER_ARG=%v must be within [0,1]", cfg.SampleRatio)
	}
	return cfg
}

// Telemetry holds the process's providers and its metrics registry.
type Telemetry struct {
	Config   Config
	Logger   *slog.Logger
	Registry *prometheus.Registry
	tracer   *sdktrace.TracerProvider
}

// Setup installs the global tracer provider and propagators and builds the
// process's logger and metrics registry.
func Setup(ctx context.Context, cfg Config, logOut io.Writer) (*Telemetry, error) {
	logger := NewLogger(logOut, cfg.Service, cfg.Instance)

	res, err := resource.New(ctx, resource.WithAttributes(
		semconv.ServiceName(cfg.Service),
		semconv.ServiceInstanceID(cfg.Instance),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// What a load run reports it ran with: the share of requests traced.
	sampled := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: sampleMetric,
		Help: "Share of new traces this process samples and exports (OTEL_TRACES_SAMPLER_ARG, parent-based; 0 when export is off).",
	})
	if cfg.Endpoint != "" {
		sampled.Set(cfg.SampleRatio)
	}
	reg.MustRegister(sampled)
	RegisterCPUQuota(reg, logger)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}
	if cfg.Endpoint != "" {
		exp, err := otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpointURL(cfg.Endpoint),
			otlptracegrpc.WithInsecure(),
			// On a first run Jaeger starts minutes after the services (its
			// binary is still being built). gRPC's default reconnect backoff
			// grows to 2 minutes by then; 5 s at most gets the queued spans
			// to Jaeger within seconds of its start.
			otlptracegrpc.WithDialOption(grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
				MinConnectTimeout: 5 * time.Second,
			})))
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		batcher := sdktrace.NewBatchSpanProcessor(newCountingExporter(exp, reg),
			sdktrace.WithBatchTimeout(500*time.Millisecond),
			sdktrace.WithBlocking()) // the counting queue in front decides what to drop
		opts = append(opts, sdktrace.WithSpanProcessor(newCountingQueue(batcher, cfg.MaxQueue, reg)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))

	return &Telemetry{Config: cfg, Logger: logger, Registry: reg, tracer: tp}, nil
}

// Shutdown flushes buffered spans; call it last, with a deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.tracer.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Flush is Shutdown for a deferred call at the end of run: spans are
// flushed last, within grace, even though ctx is already cancelled.
func (t *Telemetry) Flush(ctx context.Context, grace time.Duration) {
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := t.Shutdown(flushCtx); err != nil {
		t.Logger.Warn("telemetry flush", "err", err)
	}
}

// InstanceAttr is the span attribute naming the clone; the resource already
// carries it, but a span attribute makes it searchable in Jaeger's tag query.
func (t *Telemetry) InstanceAttr() attribute.KeyValue {
	return attribute.String("scaleshop.instance", t.Config.Instance)
}

// TraceID returns the W3C trace id of ctx's span, or "".
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// NewLogger returns a JSON logger that stamps service, instance and, when the
// record's context carries a span, trace_id and span_id.
func NewLogger(w io.Writer, service, instance string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(traceHandler{h}).With("service", service, "instance", instance)
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// DefaultInstance names a clone after its service and port, "catalog-8081",
// when SERVICE_INSTANCE_ID is not set.
func DefaultInstance(service, addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return service + "-" + addr[i+1:]
	}
	return service
}
