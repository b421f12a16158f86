package httpserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/problem"
)

// Capacity is back pressure for one process: at most MaxConcurrency
// requests are served at once. A request past the limit waits in a bounded
// queue (MaxQueue requests, at most QueueTimeout each) for a slot; a full
// queue or a wait that times out answers 503 problem+json with Retry-After
// at once, so an overloaded clone sheds load instead of letting every
// request's latency grow without bound. Every wait is bounded by the
// request's context: a client that goes away stops waiting and frees its
// place. The limit is not what sizes a clone: its CPU quota is (see
// infra/cpuquota); this only decides what happens past that size. The zero
// value is off.
type Capacity struct {
	MaxConcurrency int           // requests served at once; 0 = no limit
	MaxQueue       int           // requests waiting for a slot
	QueueTimeout   time.Duration // the longest wait for a slot
}

// On reports whether the middleware is needed at all.
func (c Capacity) On() bool { return c.MaxConcurrency > 0 }

// ReadCapacity reads HTTP_MAX_CONCURRENCY (0: no limit), HTTP_MAX_QUEUE
// (default 4 × the limit) and HTTP_QUEUE_TIMEOUT (1s). Each service reads
// it in its readSettings, so a bad value stops the start with the rest of
// its configuration's problems.
func ReadCapacity(env *config.Env) Capacity {
	c := Capacity{
		MaxConcurrency: env.Int("HTTP_MAX_CONCURRENCY", 0),
		QueueTimeout:   env.Duration("HTTP_QUEUE_TIMEOUT", time.Second),
	}
	c.MaxQueue = env.Int("HTTP_MAX_QUEUE", 4*max(c.MaxConcurrency, 0))
	if c.MaxConcurrency < 0 || c.MaxQueue < 0 {
		env.Fail("HTTP_MAX_CONCURRENCY and HTTP_MAX_QUEUE must not be negative")
	}
	if c.QueueTimeout <= 0 {
		env.Fail("HTTP_QUEUE_TIMEOUT must be positive")
	}
	return c
}

// Option changes what NewEngine installs.
type Option func(*engineOptions)

type engineOptions struct {
	capacity Capacity
}

// WithCapacity installs the capacity limit c (off when c is the zero value).
func WithCapacity(c Capacity) Option {
	return func(o *engineOptions) { o.capacity = c }
}

// capacityLimit is the middleware; probes and scrapes are never limited, so
// a busy clone still answers its health checks.
func capacityLimit(c Capacity, reg prometheus.Registerer, logger *slog.Logger) gin.HandlerFunc {
	limit := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_server_concurrency_limit",
		Help: "HTTP_MAX_CONCURRENCY in force: requests served at once (0: no limit).",
	})
	limit.Set(float64(c.MaxConcurrency))
	reg.MustRegister(limit)
	if !c.On() {
		return nil
	}
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_server_in_flight_requests",
		Help: "Requests holding a capacity slot (HTTP_MAX_CONCURRENCY).",
	})
	queued := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_server_queued_requests",
		Help: "Requests waiting for a capacity slot.",
	})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_server_rejected_requests_total",
		Help: "Requests answered 503 by the capacity limit, by reason: queue_full, queue_timeout, or cancelled (the client went away while waiting).",
	}, []string{"reason"})
	reg.MustRegister(inFlight, queued, rejected)
	logger.Info("capacity limit on: past it this process sheds load with 503",
		"max_concurrency", c.MaxConcurrency, "max_queue", c.MaxQueue, "queue_timeout", c.QueueTimeout.String())

	slots := make(chan struct{}, c.MaxConcurrency)
	var waiting atomic.Int64
	shed := func(gc *gin.Context, reason, detail string) {
		rejected.WithLabelValues(reason).Inc()
		d := problem.New(http.StatusServiceUnavailable, detail)
		d.RetryAfter = 1
		WriteProblem(gc, d)
	}
	return func(gc *gin.Context) {
		if !notProbe(gc.Request) {
			gc.Next()
			return
		}
		ctx := gc.Request.Context()
		select {
		case slots <- struct{}{}:
		default:
			if waiting.Add(1) > int64(c.MaxQueue) {
				waiting.Add(-1)
				shed(gc, "queue_full", fmt.Sprintf("at capacity: %d requests in service and %d waiting; retry later", c.MaxConcurrency, c.MaxQueue))
				return
			}
			queued.Inc()
			reason := wait(ctx, slots, c.QueueTimeout)
			queued.Dec()
			waiting.Add(-1)
			switch reason {
			case "queue_timeout":
				shed(gc, reason, fmt.Sprintf("at capacity: no slot freed within %s; retry later", c.QueueTimeout))
				return
			case "cancelled":
				shed(gc, reason, "the request ended while waiting for capacity")
				return
			}
		}
		inFlight.Inc()
		defer func() {
			inFlight.Dec()
			<-slots
		}()
		gc.Next()
	}
}

// wait takes a slot, or says why not: "queue_timeout" or "cancelled".
func wait(ctx context.Context, slots chan struct{}, timeout time.Duration) string {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return ""
	case <-t.C:
		return "queue_timeout"
	case <-ctx.Done():
		return "cancelled"
	}
}
