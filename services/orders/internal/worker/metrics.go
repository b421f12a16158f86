package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// Metrics are the worker's Prometheus series.
type Metrics struct {
	lag        *prometheus.GaugeVec
	outcomes   *prometheus.CounterVec
	finals     *prometheus.CounterVec
	retries    prometheus.Counter
	rebalances prometheus.Counter
	latency    prometheus.Histogram
	commit     prometheus.Histogram
}

// NewMetrics registers the worker's series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_consumer_lag",
			Help: "Messages behind the partition's high-water mark, as of the last message fetched from it.",
		}, []string{"partition"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_worker_messages_total",
			Help: "orders.placed messages handled, by outcome (final, duplicate, dead_lettered).",
		}, []string{"outcome"}),
		finals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_final_total",
			Help: "Orders moved to a final status, by status, reason and shard.",
		}, []string{"status", "reason", "shard"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_worker_retries_total",
			Help: "Failed processing attempts that were retried.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_consumer_rebalances_total",
			Help: "Consumer-group rebalances this member took part in.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orders_accept_to_final_seconds",
			Help:    "Time from an order's acceptance (202) to its final status.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orders_consumer_commit_seconds",
			Help:    "One synchronous offset commit (covering every message done since the previous one).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	reg.MustRegister(m.lag, m.outcomes, m.finals, m.retries, m.rebalances, m.latency, m.commit)
	return m
}

func (m *Metrics) final(o *orders.Order) {
	m.outcomes.WithLabelValues("final").Inc()
	m.finals.WithLabelValues(string(o.Status), string(o.Reason), strconv.Itoa(o.ID.Shard)).Inc()
	m.latency.Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
}

// WatchReader adds the reader's rebalances to the counter every interval
// (kafka-go's Stats returns counts since the previous call).
func (m *Metrics) WatchReader(ctx context.Context, r *kafka.Reader, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.rebalances.Add(float64(r.Stats().Rebalances))
		}
	}
}
