package relay

import (
	"context"
	"database/sql"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backlog watches every shard's unpublished outbox rows. Every API clone
// runs one (not only the relay leader): it decides whether POST /api/orders
// for a shard is answered 503 + Retry-After instead of growing the outbox
// without limit while Kafka or the relay cannot keep up.
type Backlog struct {
	dbs      []*sql.DB
	bound    int64
	every    time.Duration
	counts   []atomic.Int64
	log      *slog.Logger
	size     *prometheus.GaugeVec
	age      *prometheus.GaugeVec
	refusals *prometheus.CounterVec
}

// NewBacklog watches dbs every interval; a shard with more than bound
// unpublished rows refuses new orders.
func NewBacklog(dbs []*sql.DB, bound int, every time.Duration, log *slog.Logger, reg prometheus.Registerer) *Backlog {
	b := &Backlog{
		dbs: dbs, bound: int64(bound), every: every, counts: make([]atomic.Int64, len(dbs)), log: log,
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_outbox_backlog",
			Help: "Unpublished outbox rows per shard.",
		}, []string{"shard"}),
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orders_outbox_oldest_age_seconds",
			Help: "Age of the oldest unpublished outbox row per shard (0 when none).",
		}, []string{"shard"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_backpressure_refusals_total",
			Help: "POST /api/orders answered 503 because the shard's outbox backlog was over its bound.",
		}, []string{"shard"}),
	}
	reg.MustRegister(b.size, b.age, b.refusals)
	return b
}

// Over implements orders.Backlog and counts the refusal it causes.
func (b *Backlog) Over(shard int) bool {
	over := b.counts[shard].Load() > b.bound
	if over {
		b.refusals.WithLabelValues(strconv.Itoa(shard)).Inc()
	}
	return over
}

// Run refreshes the counts until ctx ends.
func (b *Backlog) Run(ctx context.Context) error {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		for shard, db := range b.dbs {
			b.refresh(ctx, shard, db)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Backlog) refresh(ctx context.Context, shard int, db *sql.DB) {
	ctx, cancel := context.WithTimeout(ctx, b.every)
	defer cancel()
	var n int64
	var age float64
	err := db.QueryRowContext(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM outbox WHERE published_at IS NULL`).Scan(&n, &age)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Debug("outbox backlog unknown", "shard", shard, "err", err)
		}
		return // keep the last known value; the shard's own errors surface on POST
	}
	b.counts[shard].Store(n)
	label := strconv.Itoa(shard)
	b.size.WithLabelValues(label).Set(float64(n))
	b.age.WithLabelValues(label).Set(age)
}
