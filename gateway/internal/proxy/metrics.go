package proxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	tries           *prometheus.CounterVec
	tryDuration     *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	rateLimited     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_requests_total",
			Help: "Requests answered by the gateway, by pool (none: no route) and status code.",
		}, []string{"pool", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_request_duration_seconds",
			Help:    "Time from the request's arrival to its handler's return, by pool.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"pool"}),
		tries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_tries_total",
			Help: "Tries sent to a pool member, by result (ok, 503, 5xx, connect_error, timeout, error, dropped).",
		}, []string{"pool", "member", "result"}),
		tryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gateway_upstream_try_duration_seconds",
			Help:    "Time from sending a try to a member to its response headers, by pool and member.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"pool", "member"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_retries_total",
			Help: "Retries on another member, by the failed try's result.",
		}, []string{"pool", "reason"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_retry_budget_exhausted_total",
			Help: "Retries not made because the pool's retry budget was spent.",
		}, []string{"pool"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_rate_limited_total",
			Help: "Requests refused with 429.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.tries, m.tryDuration, m.retries, m.budgetExhausted, m.rateLimited)
	return m
}
