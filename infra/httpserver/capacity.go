package httpserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/problem"
)

// Capacity makes one process behave like a server of a known size: at most
// MaxConcurrency requests are served at once, each holding its slot for at
// least ServiceTime. On a 2-core machine where every clone shares the same
// cores, this is what lets "add a clone" show as more capacity: a clone's
// throughput is bounded by MaxConcurrency / ServiceTime, not by the CPU the
// clones compete for. The zero value is off.
//
// A request past the limit waits in a bounded queue (MaxQueue requests, at
// most QueueTimeout each) for a slot; a full queue or a wait that times out
// answers 503 problem+json with Retry-After at once, so an overloaded clone
// sheds load instead of hanging. Every wait is bounded by the request's
// context: a client that goes away stops waiting and frees its place.
type Capacity struct {
	MaxConcurrency int           // requests served at once; 0 = no limit
	ServiceTime    time.Duration // a simulated service time per request, holding the slot
	MaxQueue       int           // requests waiting for a slot
	QueueTimeout   time.Duration // the longest wait for a slot
}

// On reports whether the middleware is needed at all.
func (c Capacity) On() bool { return c.MaxConcurrency > 0 || c.ServiceTime > 0 }

// ReadCapacity reads HTTP_MAX_CONCURRENCY (0: no limit), HTTP_SERVICE_TIME
// (0s), HTTP_MAX_QUEUE (default 4 × the limit) and HTTP_QUEUE_TIMEOUT (1s).
// All are off by default: they exist for load experiments.
func ReadCapacity(env *config.Env) Capacity {
	c := Capacity{
		MaxConcurrency: env.Int("HTTP_MAX_CONCURRENCY", 0),
		ServiceTime:    env.Duration("HTTP_SERVICE_TIME", 0),
		QueueTimeout:   env.Duration("HTTP_QUEUE_TIMEOUT", time.Second),
	}
	c.MaxQueue = env.Int("HTTP_MAX_QUEUE", 4*max(c.MaxConcurrency, 0))
	if c.MaxConcurrency < 0 || c.ServiceTime < 0 || c.MaxQueue < 0 || c.QueueTimeout <= 0 {
		env.Fail("HTTP_MAX_CONCURRENCY, HTTP_SERVICE_TIME and HTTP_MAX_QUEUE must not be negative, HTTP_QUEUE_TIMEOUT must be positive")
	}
	return c
}

// Option changes what NewEngine installs.
type Option func(*engineOptions)

type engineOptions struct {
	capacity Capacity
	err      error // a bad setting, logged by NewEngine
}

// WithCapacity installs the capacity limit c (off when c is the zero value).
func WithCapacity(c Capacity) Option {
	return func(o *engineOptions) { o.capacity = c }
}

// CapacityFromEnv is WithCapacity(ReadCapacity(...)) for a main that has only
// its getenv at hand: one argument to NewEngine, no settings of its own.
// A malformed value is logged as an error and leaves the limit off; the
// http_server_concurrency_limit gauge shows what is in force.
func CapacityFromEnv(getenv func(string) string) Option {
	env := config.New(getenv)
	c := ReadCapacity(env)
	err := env.Err()
	return func(o *engineOptions) {
		if err != nil {
			o.err = err
			return
		}
		o.capacity = c
	}
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
	logger.Warn("capacity limit on (HTTP_MAX_CONCURRENCY / HTTP_SERVICE_TIME): this process serves a bounded rate by design",
		"max_concurrency", c.MaxConcurrency, "service_time", c.ServiceTime.String(),
		"max_queue", c.MaxQueue, "queue_timeout", c.QueueTimeout.String())

	var slots chan struct{}
	if c.MaxConcurrency > 0 {
		slots = make(chan struct{}, c.MaxConcurrency)
	}
	var waiting atomic.Int64
	shed := func(gc *gin.Context, reason, detail string) {
		rejected.WithLabelValues(reason).Inc()
		WriteProblem(gc, problem.From(problem.Errorf(problem.ErrUnavailable, "%s", detail)))
	}
	return func(gc *gin.Context) {
		if !notProbe(gc.Request) {
			gc.Next()
			return
		}
		ctx := gc.Request.Context()
		if slots != nil {
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
		}
		if c.ServiceTime > 0 && !delay(ctx, c.ServiceTime) {
			shed(gc, "cancelled", "the request ended during its service time")
			return
		}
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

// delay waits d unless ctx ends first; it reports whether it waited d.
func delay(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
