// Package relay publishes each logical shard's transactional outbox to
// Kafka. Exactly one relay per shard is active at a time across all orders
// API clones: the one holding the shard's Postgres advisory lock. The lock
// lives with its database session, so when the holder dies the server
// releases it and another clone takes over within one retry interval.
//
// Delivery is at least once (a relay can die between publishing a batch and
// marking it); consumers are idempotent, which makes the effect exactly once.
package relay

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
)

// Publisher is the part of *kafka.Writer the relay uses (one shared Writer
// per process, acks from all in-sync replicas, a few ms of batching).
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Config tunes the relay.
type Config struct {
	Batch     int           // rows per publish
	LockRetry time.Duration // how often a follower tries to take the lock
	IdlePoll  time.Duration // poll even without a NOTIFY (a lost notification costs at most this)
	// Linger is how long a leader woken by a notification waits before it
	// reads, so the rows committed meanwhile share its batch: its SELECT,
	// its publish request and its UPDATE. Kafka producers' linger.ms, for
	// the same reason.
	Linger         time.Duration
	BackoffMin     time.Duration // first wait after a failed publish, growing 1.5× (±50 % jitter)
	BackoffMax     time.Duration
	KeepPublished  time.Duration // published rows are kept this long (debugging, drills)
	IdempotencyTTL time.Duration // Idempotency-Keys are kept at least this long
}

// DefaultConfig is the configuration of the native stack.
func DefaultConfig() Config {
	return Config{
		Batch: 500, LockRetry: time.Second, IdlePoll: 500 * time.Millisecond, Linger: 10 * time.Millisecond,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second,
		KeepPublished: time.Hour, IdempotencyTTL: 48 * time.Hour,
	}
}

// LockKey is the advisory lock that elects a shard's relay.
func LockKey(shard int) int64 { return 0x6f726465_72730000 + int64(shard) } // "orders\0\0" + shard

// Relay runs one leadership loop per shard.
type Relay struct {
	dbs     []*sql.DB
	pub     Publisher
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
}

// New builds a relay over the shards' pools.
func New(dbs []*sql.DB, pub Publisher, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Relay {
	m := newMetrics(reg)
	for shard := range dbs {
		// Every clone exports every shard, 0 where it does not lead: a
		// missing series would read as "no data", not "a follower".
		m.leader.WithLabelValues(strconv.Itoa(shard)).Set(0)
	}
	return &Relay{dbs: dbs, pub: pub, cfg: cfg, log: log, metrics: m,
		tracer: otel.Tracer("github.com/scaleshop/scaleshop/services/orders/internal/relay")}
}

// Run runs every shard's loop until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	done := make(chan struct{}, len(r.dbs))
	for shard := range r.dbs {
		go func() {
			defer func() { done <- struct{}{} }()
			r.runShard(ctx, shard)
		}()
	}
	for range r.dbs {
		<-done
	}
	return nil
}

// runShard competes for the shard's lock, leads while it holds it, and
// competes again when it loses it.
func (r *Relay) runShard(ctx context.Context, shard int) {
	log := r.log.With("shard", shard)
	for ctx.Err() == nil {
		led, err := r.tryLead(ctx, shard)
		if err != nil && ctx.Err() == nil {
			log.Warn("outbox relay stopped leading", "err", err)
		}
		if led {
			continue // lost the lock after leading: try again at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.LockRetry):
		}
	}
}

// tryLead takes a dedicated session, and if it wins the shard's advisory
// lock, relays on that session until it fails or ctx ends.
func (r *Relay) tryLead(ctx context.Context, shard int) (led bool, err error) {
	conn, err := r.dbs[shard].Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		var got bool
		if err := pc.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, LockKey(shard)).Scan(&got); err != nil {
			return err
		}
		if !got {
			return nil
		}
		led = true
		defer func() {
			// The session goes back to the pool: give the lock up explicitly
			// (a dead session has released it already).
			unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_, _ = pc.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, LockKey(shard))
		}()
		return r.lead(ctx, shard, pc)
	})
	if led {
		// Never hand a session that may still hold the lock back to the pool.
		_ = conn.Raw(func(dc any) error { return driver.ErrBadConn })
	}
	return led, err
}

// lead relays the shard's outbox on pc, the session holding the lock.
func (r *Relay) lead(ctx context.Context, shard int, pc *pgx.Conn) error {
	log := r.log.With("shard", shard)
	label := strconv.Itoa(shard)
	log.Info("outbox relay leading")
	r.metrics.leader.WithLabelValues(label).Set(1)
	defer r.metrics.leader.WithLabelValues(label).Set(0)

	if _, err := pc.Exec(ctx, `LISTEN `+ordersdb.NotifyChannel); err != nil {
		return err
	}
	// The relay's own writes (marking rows published, pruning) do not wait
	// for their WAL flush; the WAL writer flushes them within 200 ms. A
	// mark lost to a server crash only publishes its rows again, which
	// at-least-once delivery already allows (consumers deduplicate). That
	// is one fsync fewer per published batch on a server whose every
	// order also commits its placement and its decision synchronously.
	// The setting dies with this session: a leader's session never
	// returns to the pool.
	if _, err := pc.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return err
	}
	// Jitter keeps the eight shards' leaders from retrying a broker that
	// just came back in the same instant.
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval, retry.MaxInterval = r.cfg.BackoffMin, r.cfg.BackoffMax
	lastPrune := time.Time{}
	// unmarked are the rows of the last batch, published and not yet
	// marked: the next batch's query marks them (see relayBatch), and a
	// leader that stops marks them on its way out.
	var unmarked []int64
	defer func() {
		if len(unmarked) > 0 {
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_, _ = pc.Exec(mctx, `UPDATE outbox SET published_at = now() WHERE seq = ANY($1)`, unmarked)
		}
	}()
	for ctx.Err() == nil {
		if time.Since(lastPrune) > time.Minute {
			if err := r.prune(ctx, pc); err != nil {
				return err
			}
			lastPrune = time.Now()
		}
		// The rows of every notification already here are committed, so
		// the batch below sees them: each needs no SELECT of its own.
		drainNotifications(pc)
		n, published, err := r.relayBatch(ctx, shard, pc, unmarked)
		unmarked = published
		if err != nil {
			if isSessionError(err) {
				return err
			}
			r.metrics.failures.WithLabelValues(label).Inc()
			wait := retry.NextBackOff()
			var failed publishError
			errCtx := ctx
			if errors.As(err, &failed) {
				// The line names the batch's first order's trace, so the
				// failed publish spans lead to it and back.
				errCtx = trace.ContextWithSpanContext(ctx, failed.first)
			}
			log.WarnContext(errCtx, "outbox publish failed; rows stay and are retried", "err", err,
				"retry_in", wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		retry.Reset()
		if n == r.cfg.Batch {
			continue // more waiting
		}
		// A short batch took every row committed before it began; a row
		// committed since notifies, and that wakes the wait.
		if err := r.waitForRows(ctx, pc); err != nil {
			return err
		}
	}
	return nil
}

// drainNotifications discards the notifications pc has already received,
// without waiting for more: a context that is already done makes pgx
// return the buffered ones and then stop, with no I/O on the session.
func drainNotifications(pc *pgx.Conn) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if _, err := pc.WaitForNotification(done); err != nil {
			return
		}
	}
}

// waitForRows blocks until a transaction notifies the channel, or IdlePoll.
func (r *Relay) waitForRows(ctx context.Context, pc *pgx.Conn) error {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.IdlePoll)
	defer cancel()
	_, err := pc.WaitForNotification(wctx)
	if err != nil && wctx.Err() != nil {
		return nil // timeout or shutdown, not a broken session
	}
	if err == nil && r.cfg.Linger > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.Linger):
		}
	}
	return err
}

type outboxRow struct {
	seq       int64
	topic     string
	key       string
	payload   []byte
	headers   map[string]string
	createdAt time.Time
}

// relayBatch marks the rows of the batch before it (unmarked) published
// and reads the oldest unpublished rows in the same statement, publishes
// them in one WriteMessages call and returns their seqs, for the next
// call to mark; on a publish error it returns none, and they stay
// unpublished. Marking a batch in its own statement right after its
// publish cost a round trip a batch, and at 300 orders/s a batch is two
// rows: a third of the relay's statements. The mark comes at most
// IdlePoll later, so an idle shard's gauges count its last batch as
// unpublished for that long; a leader that dies first leaves those rows
// to be published again, which at-least-once delivery already allows.
func (r *Relay) relayBatch(ctx context.Context, shard int, pc *pgx.Conn, unmarked []int64) (int, []int64, error) {
	// coalesce: pgx sends a nil slice as NULL, and seq <> ALL(NULL) is
	// NULL, which would select nothing.
	rows, err := pc.Query(ctx, `WITH marked AS (UPDATE outbox SET published_at = now() WHERE seq = ANY($2::bigint[]))
		SELECT seq, topic, key, payload, headers, created_at FROM outbox
		WHERE published_at IS NULL AND seq <> ALL(coalesce($2::bigint[], '{}')) ORDER BY seq LIMIT $1`, r.cfg.Batch, unmarked)
	if err != nil {
		return 0, unmarked, sessionError{err}
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		var headers []byte
		err := row.Scan(&o.seq, &o.topic, &o.key, &o.payload, &headers, &o.createdAt)
		if err == nil {
			_ = json.Unmarshal(headers, &o.headers)
		}
		return o, err
	})
	if err != nil {
		return 0, unmarked, sessionError{err}
	}
	if len(batch) == 0 {
		return 0, nil, nil
	}
	msgs := make([]kafka.Message, len(batch))
	spans := make([]trace.Span, len(batch))
	seqs := make([]int64, len(batch))
	for i, row := range batch {
		parent := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier(row.headers))
		sctx, span := r.tracer.Start(parent, "publish "+row.topic, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(orders.ShardAttr.Int(shard),
				attribute.String("messaging.system", "kafka"),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", row.topic),
				attribute.Int64("scaleshop.outbox.seq", row.seq)))
		spans[i] = span
		carrier := propagation.MapCarrier{}
		otel.GetTextMapPropagator().Inject(sctx, carrier)
		headers := []kafka.Header{
			{Key: HeaderShard, Value: []byte(strconv.Itoa(shard))},
			{Key: HeaderSeq, Value: []byte(strconv.FormatInt(row.seq, 10))},
		}
		for k, v := range carrier {
			headers = append(headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		msgs[i] = kafka.Message{Topic: row.topic, Key: []byte(row.key), Value: row.payload, Headers: headers}
		seqs[i] = row.seq
	}
	if err := r.publish(ctx, msgs, spans); err != nil {
		return 0, nil, err
	}
	label := strconv.Itoa(shard)
	now := time.Now()
	for _, row := range batch {
		r.metrics.published.WithLabelValues(label, row.topic).Inc()
		r.metrics.waited.Observe(now.Sub(row.createdAt).Seconds())
	}
	return len(batch), seqs, nil
}

// publish sends a batch in one call and ends each row's span, marked as
// failed when the call failed, so the waterfall shows which publishes broke.
func (r *Relay) publish(ctx context.Context, msgs []kafka.Message, spans []trace.Span) error {
	start := time.Now()
	err := r.pub.WriteMessages(ctx, msgs...)
	r.metrics.publish.Observe(time.Since(start).Seconds())
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	if err != nil {
		return publishError{fmt.Errorf("publish %d outbox rows: %w", len(msgs), err), spans[0].SpanContext()}
	}
	return nil
}

// prune deletes published rows and expired Idempotency-Keys, a bounded
// amount per call, so neither table grows without limit.
func (r *Relay) prune(ctx context.Context, pc *pgx.Conn) error {
	if _, err := pc.Exec(ctx, `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
		WHERE published_at < now() - $1::interval LIMIT 10000)`, r.cfg.KeepPublished.String()); err != nil {
		return sessionError{err}
	}
	if _, err := pc.Exec(ctx, `DELETE FROM idempotency_keys WHERE (customer_id, key) IN (SELECT customer_id, key
		FROM idempotency_keys WHERE created_at < now() - $1::interval LIMIT 10000)`, r.cfg.IdempotencyTTL.String()); err != nil {
		return sessionError{err}
	}
	return nil
}

// Kafka headers the relay adds to every message.
const (
	HeaderShard = "scaleshop-shard"
	HeaderSeq   = "scaleshop-outbox-seq"
)

// publishError is a failed publish of a batch whose first row's span is
// first.
type publishError struct {
	error
	first trace.SpanContext
}

func (e publishError) Unwrap() error { return e.error }

// sessionError is a failure of the leader's own database session: the lock
// may be gone with it, so the relay stops leading.
type sessionError struct{ error }

func (e sessionError) Unwrap() error { return e.error }

func isSessionError(err error) bool {
	var se sessionError
	return errors.As(err, &se)
}
