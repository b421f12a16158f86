package worker

import (
	"context"
	"log/slog"
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
	parked     prometheus.Gauge
	oldest     *prometheus.GaugeVec
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
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orders_worker_parked_messages",
			Help: "Messages held on their lane because a dependency fails; retried with backoff until it answers.",
		}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_oldest_pending_age_seconds",
			Help: "How long the shard's oldest pending order has been pending (0: none pending).",
		}, []string{"shard"}),
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
	reg.MustRegister(m.lag, m.outcomes, m.finals, m.retries, m.parked, m.oldest, m.rebalances, m.latency, m.commit)
	return m
}

func (m *Metrics) final(o *orders.Order) {
	m.outcomes.WithLabelValues("final").Inc()
	m.finals.WithLabelValues(string(o.Status), string(o.Reason), strconv.Itoa(o.ID.Shard)).Inc()
	m.latency.Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
}

// PendingClock is what WatchPending needs of the order store.
type PendingClock interface {
	// OldestPending is when the shard's oldest pending order was
	// accepted, ok false when none is pending.
	OldestPending(ctx context.Context, shard int) (created time.Time, ok bool, err error)
}

// WatchPending sets orders_oldest_pending_age_seconds for every shard each
// interval: an order stuck anywhere (outbox, Kafka, a parked lane, the dead
// letters) shows up here, whatever held it.
func (m *Metrics) WatchPending(ctx context.Context, store PendingClock, shards int, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for shard := range shards {
			qctx, cancel := context.WithTimeout(ctx, every)
			created, ok, err := store.OldestPending(qctx, shard)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				log.WarnContext(ctx, "oldest pending order unknown", "shard", shard, "err", err)
			case err == nil && ok:
				m.oldest.WithLabelValues(strconv.Itoa(shard)).Set(max(time.Since(created).Seconds(), 0))
			case err == nil:
				m.oldest.WithLabelValues(strconv.Itoa(shard)).Set(0)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
