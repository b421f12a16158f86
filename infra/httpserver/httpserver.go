// Package httpserver builds the gin engine every scaleshop service shares
// (tracing, RED metrics, panic recovery into problem+json, health endpoints)
// and runs an http.Server with timeouts and a graceful shutdown.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/telemetry"
)

// NewEngine returns a gin engine in release mode without gin's per-request
// stdout logger (it is synchronous and dominates CPU under load), with
// tracing, RED metrics and recovery installed in that order, then the
// capacity limit when an option turns it on (WithCapacity, CapacityFromEnv):
// its queueing and 503s show in the traces and the RED metrics.
func NewEngine(tel *telemetry.Telemetry, opts ...Option) *gin.Engine {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		tel.Logger.Error("capacity limit ignored: bad setting", "err", o.err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true // c.Request.Context() carries the span for handlers
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		WriteProblem(c, problem.From(problem.Errorf(problem.ErrNotFound, "no such route")))
	})
	r.NoMethod(func(c *gin.Context) {
		WriteProblem(c, problem.From(problem.Errorf(problem.ErrMethodNotAllowed, "method not allowed on this route")))
	})
	instance := tel.InstanceAttr()
	r.Use(
		otelgin.Middleware(tel.Config.Service, otelgin.WithFilter(notProbe)),
		func(c *gin.Context) {
			trace.SpanFromContext(c.Request.Context()).SetAttributes(instance)
			// Lets a curl user see load balancing without opening a trace.
			c.Header("X-Served-By", tel.Config.Instance)
			c.Next()
		},
		redMetrics(tel.Registry),
		recovery(tel.Logger),
	)
	if limit := capacityLimit(o.capacity, tel.Registry, tel.Logger); limit != nil {
		r.Use(limit)
	}
	return r
}

// notProbe keeps health checks and scrapes out of the traces.
func notProbe(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	return true
}

func redMetrics(reg prometheus.Registerer) gin.HandlerFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_server_requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_server_request_duration_seconds",
		Help:    "HTTP request latency by route template and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	reg.MustRegister(requests, duration)
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		duration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}

func recovery(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(c.Request.Context(), "panic in handler", "panic", fmt.Sprint(v), "path", c.FullPath())
				WriteProblem(c, problem.From(errors.New("panic in handler")))
				c.Abort()
			}
		}()
		c.Next()
	}
}

// WriteProblem sends d with the request's trace id.
func WriteProblem(c *gin.Context, d problem.Details) {
	d.TraceID = telemetry.TraceID(c.Request.Context())
	d.Instance = c.Request.URL.Path
	problem.Write(c.Writer, d)
	c.Abort()
}

// WriteError maps err to its problem and logs it when it is a server fault;
// every handler ends an error path here, so each error is logged once.
func WriteError(c *gin.Context, logger *slog.Logger, err error) {
	d := problem.From(err)
	if d.Status >= 500 {
		logger.ErrorContext(c.Request.Context(), "request failed",
			"err", err, "method", c.Request.Method, "route", c.FullPath(), "status", d.Status)
	}
	WriteProblem(c, d)
}

// Check is one named readiness dependency.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// MountHealth adds /healthz (the process is alive), /readyz (every
// dependency answers within timeout) and /metrics.
func MountHealth(r *gin.Engine, reg *prometheus.Registry, timeout time.Duration, checks ...Check) {
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
		defer cancel()
		status, failures := http.StatusOK, gin.H{}
		for _, ch := range checks {
			if err := ch.Check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				failures[ch.Name] = err.Error()
			}
		}
		if status != http.StatusOK {
			// Readiness is for operators and balancers on loopback; naming the
			// failing dependency is the point, so it is not a leak here.
			c.JSON(status, gin.H{"status": "unavailable", "failed": failures})
			return
		}
		c.JSON(status, gin.H{"status": "ready"})
	})
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	r.GET("/metrics", gin.WrapH(h))
}

// Server is an http.Server with the timeouts set that the zero value lacks.
func Server(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// Serve listens on srv.Addr and serves until ctx ends, then shuts down,
// letting in-flight requests finish within grace.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", srv.Addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown %s: %w", srv.Addr, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// SpanAttrs sets attributes on the request's span.
func SpanAttrs(c *gin.Context, attrs ...attribute.KeyValue) {
	trace.SpanFromContext(c.Request.Context()).SetAttributes(attrs...)
}
