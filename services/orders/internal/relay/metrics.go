package relay

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	leader    *prometheus.GaugeVec
	published *prometheus.CounterVec
	failures  *prometheus.CounterVec
	publish   prometheus.Histogram
	waited    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_relay_leader",
			Help: "1 while this clone holds the shard's relay lock.",
		}, []string{"shard"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_outbox_published_total",
			Help: "Outbox rows published to Kafka, by shard and topic.",
		}, []string{"shard", "topic"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_outbox_publish_failures_total",
			Help: "Failed outbox publish batches (the rows stay and are retried).",
		}, []string{"shard"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orders_outbox_publish_seconds",
			Help:    "Time of one batch publish (WriteMessages, acks from all in-sync replicas).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orders_outbox_delay_seconds",
			Help:    "Time from an outbox row's commit to its publish.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120},
		}),
	}
	reg.MustRegister(m.leader, m.published, m.failures, m.publish, m.waited)
	return m
}
