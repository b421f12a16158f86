// Package worker consumes orders.placed in one consumer group and takes each
// order to its final status: reserve stock in the catalog (idempotent by
// order id), decide payment, release the reservation when payment is
// declined, then move the order from pending to confirmed or rejected with a
// conditional update that also writes the orders.status event to the outbox.
//
// The offset is committed only after that transaction: a crash anywhere
// before it redelivers the message, and a redelivered message finds the
// order already final and changes nothing.
//
// Two kinds of failure, two answers. A message that can never succeed
// (malformed, an unknown order, a catalog 4xx such as an unknown product)
// goes to the dead-letter topic at once. Anything else (the catalog or a
// shard unreachable, a 5xx, a timeout) is a dependency that is away for a
// while: the message stays on its lane and is retried with exponential
// backoff and jitter until it succeeds, so the lane, and the partition's
// committed offset behind it, wait instead of skipping ahead.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// Store is what the worker needs of the order store.
type Store interface {
	Get(ctx context.Context, id orders.ID) (*orders.Order, error)
	Finalize(ctx context.Context, o *orders.Order) (bool, error)
}

// Fetcher is the part of a consumer-group *kafka.Reader the worker uses:
// FetchMessage and an explicit commit, never ReadMessage's commit-first.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Publisher writes dead letters.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Config tunes retries.
type Config struct {
	Group      string // the consumer group, for spans
	Shards     int
	BackoffMin time.Duration // first wait between attempts, growing 1.5× (±50 % jitter) up to BackoffMax
	BackoffMax time.Duration // also bounds how late a lane notices that its dependency is back
	LaneDepth  int           // messages buffered per lane
	KeyLanes   int           // lanes per partition; one key always uses the same lane
	// CommitEvery is the least time between two offset commits (0: commit
	// as soon as something is done).
	CommitEvery time.Duration
}

// DefaultConfig retries a failing dependency every 5 s at most, so an order
// finishes within about that long of the dependency's return.
func DefaultConfig(shards int) Config {
	return Config{Shards: shards, BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second,
		LaneDepth: 64, KeyLanes: 4, CommitEvery: 100 * time.Millisecond}
}

// newBackOff is the one retry schedule of the worker: exponential with
// jitter, so lanes that failed together do not all retry in the same
// instant when the dependency comes back.
func (w *Worker) newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = w.cfg.BackoffMin, w.cfg.BackoffMax
	return b
}

// Dead-letter headers: why and from where a message was set aside.
const (
	HeaderDLQError     = "scaleshop-dlq-error"
	HeaderDLQPartition = "scaleshop-dlq-partition"
	HeaderDLQOffset    = "scaleshop-dlq-offset"
	// HeaderDLQAttempts is no longer written (a permanent failure is not
	// retried); it is still stripped from dead letters written before.
	HeaderDLQAttempts = "scaleshop-dlq-attempts"
)

// Worker processes orders.placed messages.
type Worker struct {
	store   Store
	catalog orders.Catalog
	dlq     Publisher
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	tracer  trace.Tracer
	now     func() time.Time
}

// New wires a worker.
func New(store Store, catalog orders.Catalog, dlq Publisher, cfg Config, log *slog.Logger, m *Metrics) *Worker {
	return &Worker{store: store, catalog: catalog, dlq: dlq, cfg: cfg, log: log, metrics: m,
		tracer: otel.Tracer("github.com/scaleshop/scaleshop/services/orders/internal/worker"), now: time.Now}
}

// Run fetches until ctx ends and processes messages concurrently without
// reordering what must stay ordered: each partition's messages are spread
// over KeyLanes lanes by key (a customer's orders stay in order on one
// lane), and an offset is committed only once it and every offset before
// it in the partition are done, after their effects are durable.
func (w *Worker) Run(ctx context.Context, r Fetcher) error {
	parts := map[int]*partition{}
	var wg sync.WaitGroup
	c := newCommitter()
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		w.commitLoop(ctx, r, c)
	}()
	defer func() {
		for _, p := range parts {
			for _, lane := range p.lanes {
				close(lane)
			}
		}
		wg.Wait()
		<-committed
	}()
	fetchBackOff := w.newBackOff()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait := fetchBackOff.NextBackOff()
			w.log.WarnContext(ctx, "fetch failed; retrying", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		fetchBackOff.Reset()
		w.metrics.lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		p, ok := parts[m.Partition]
		if !ok {
			p = &partition{lanes: make([]chan kafka.Message, max(w.cfg.KeyLanes, 1))}
			parts[m.Partition] = p
			for i := range p.lanes {
				lane := make(chan kafka.Message, w.cfg.LaneDepth)
				p.lanes[i] = lane
				wg.Go(func() {
					for m := range lane {
						if ctx.Err() != nil {
							continue // shutting down: leave it uncommitted, it is redelivered
						}
						if w.handle(ctx, m) {
							if upTo, ok := p.done(m.Offset); ok {
								c.add(upTo)
							}
						}
					}
				})
			}
		}
		p.fetched(m)
		select {
		case p.lanes[laneOf(m.Key, len(p.lanes))] <- m: // a full lane blocks fetching: back pressure toward Kafka
		case <-ctx.Done():
			return nil
		}
	}
}

// laneOf spreads keys over n lanes (FNV-1a).
func laneOf(key []byte, n int) int {
	h := uint32(2166136261)
	for _, b := range key {
		h = (h ^ uint32(b)) * 16777619
	}
	return int(h % uint32(n))
}

// partition tracks one partition's messages in fetch (= offset) order, so
// that only a contiguous done prefix is ever committed.
type partition struct {
	lanes   []chan kafka.Message
	mu      sync.Mutex
	pending []tracked
}

type tracked struct {
	m    kafka.Message
	done bool
}

func (p *partition) fetched(m kafka.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, tracked{m: m})
}

// done marks offset done and returns the newest message up to which every
// fetched message is done, if that moved.
func (p *partition) done(offset int64) (kafka.Message, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.pending {
		if p.pending[i].m.Offset == offset && !p.pending[i].done {
			p.pending[i].done = true
			break
		}
	}
	var upTo kafka.Message
	n := 0
	for n < len(p.pending) && p.pending[n].done {
		upTo = p.pending[n].m
		n++
	}
	if n == 0 {
		return upTo, false
	}
	p.pending = append(p.pending[:0], p.pending[n:]...)
	return upTo, true
}

// handle processes one message until it succeeds or fails for good, and
// dead-letters it in the second case. It reports whether the message is
// done with, so its offset may be committed.
func (w *Worker) handle(ctx context.Context, m kafka.Message) bool {
	// The order's trace context rides in the headers: every log line about
	// the order carries its trace_id, so its trace leads to its logs.
	ctx = otel.GetTextMapPropagator().Extract(ctx, headerCarrier(m.Headers))
	err := w.untilDone(ctx, m)
	if err != nil && ctx.Err() == nil {
		w.log.ErrorContext(ctx, "order message can never succeed; dead-lettering it", "err", err,
			"partition", m.Partition, "offset", m.Offset)
		if !w.deadLetter(ctx, m, err) {
			return false // shutting down before the dead letter was written: redelivered later
		}
	}
	return ctx.Err() == nil
}

// committer holds the newest committable message of each partition until
// the commit loop takes them. Committing offset n commits everything before
// it in that partition, so one commit per partition per round covers every
// message done meanwhile.
type committer struct {
	mu      sync.Mutex
	pending map[int]kafka.Message
	kick    chan struct{}
}

func newCommitter() *committer {
	return &committer{pending: map[int]kafka.Message{}, kick: make(chan struct{}, 1)}
}

func (c *committer) add(m kafka.Message) {
	c.mu.Lock()
	if cur, ok := c.pending[m.Partition]; !ok || m.Offset > cur.Offset {
		c.pending[m.Partition] = m
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *committer) take() []kafka.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kafka.Message, 0, len(c.pending))
	for p, m := range c.pending {
		out = append(out, m)
		delete(c.pending, p)
	}
	return out
}

// commitLoop commits done offsets at most once per CommitEvery: at once
// when idle, and batched while a commit is in flight or the interval has
// not passed. A synchronous commit is a broker round trip, and at a few
// orders per partition and second each would carry one message: the
// broker paid a request per order for it. Coalescing costs nothing a crash
// can see but redelivery of what finished within one interval, which the
// worker is idempotent for. On shutdown it commits what the lanes
// finished, within a short grace.
func (w *Worker) commitLoop(ctx context.Context, r Fetcher, c *committer) {
	commit := func(ctx context.Context) {
		batch := c.take()
		if len(batch) == 0 {
			return
		}
		start := time.Now()
		if err := r.CommitMessages(ctx, batch...); err != nil {
			// Typically a rebalance took a partition away: its new owner
			// redelivers from the last commit and finds the orders final.
			w.log.Warn("commit failed; those messages will be redelivered", "err", err, "partitions", len(batch))
			return
		}
		w.metrics.commit.Observe(time.Since(start).Seconds())
	}
	var last time.Time
	for {
		select {
		case <-c.kick:
			select {
			case <-time.After(time.Until(last.Add(w.cfg.CommitEvery))):
			case <-ctx.Done():
				continue // the shutdown commit below takes it
			}
			commit(ctx)
			last = time.Now()
		case <-ctx.Done():
			// Lanes mark nothing done once ctx ends: commit what they
			// finished before.
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			commit(grace)
			cancel()
			return
		}
	}
}

// untilDone processes m, retrying every failure but a permanent one with
// backoff until it succeeds or ctx ends. It returns nil, the permanent
// error, or ctx's error. While it retries, the message counts as parked.
func (w *Worker) untilDone(ctx context.Context, m kafka.Message) error {
	parked := false
	defer func() {
		if parked {
			w.metrics.parked.Dec()
		}
	}()
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := w.Process(ctx, m)
		if errors.As(err, new(permanentError)) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(w.newBackOff()), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		if !parked {
			parked = true
			w.metrics.parked.Inc()
		}
		w.metrics.retries.Inc()
		w.log.WarnContext(ctx, "order waits for a dependency; retrying", "err", err, "attempt", attempt,
			"retry_in", next.Round(time.Millisecond), "partition", m.Partition, "offset", m.Offset)
	}))
	return err
}

// deadLetter writes m with the error to the dead-letter topic, retrying until
// it is written or ctx ends.
func (w *Worker) deadLetter(ctx context.Context, m kafka.Message, cause error) bool {
	dl := kafka.Message{Key: m.Key, Value: m.Value, Headers: append(withoutDLQHeaders(m.Headers),
		kafka.Header{Key: HeaderDLQError, Value: []byte(cause.Error())},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, w.dlq.WriteMessages(ctx, dl)
	}, backoff.WithBackOff(w.newBackOff()), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		w.log.ErrorContext(ctx, "dead-letter write failed; retrying", "err", err, "retry_in", next.Round(time.Millisecond))
	}))
	if err != nil {
		return false
	}
	w.metrics.outcomes.WithLabelValues("dead_lettered").Inc()
	return true
}

// WithoutDLQHeaders drops the dead-letter headers (a replay sends the
// message back as it first was).
func withoutDLQHeaders(hs []kafka.Header) []kafka.Header {
	out := make([]kafka.Header, 0, len(hs))
	for _, h := range hs {
		switch h.Key {
		case HeaderDLQError, HeaderDLQPartition, HeaderDLQOffset, HeaderDLQAttempts:
			continue
		}
		out = append(out, h)
	}
	return out
}

// WithoutDLQHeaders is withoutDLQHeaders for the replay command.
func WithoutDLQHeaders(hs []kafka.Header) []kafka.Header { return withoutDLQHeaders(hs) }

// permanentError is a message no retry can fix (malformed, unknown order,
// a request the catalog refuses).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

type headerCarrier []kafka.Header

func (h headerCarrier) Get(key string) string {
	for _, x := range h {
		if x.Key == key {
			return string(x.Value)
		}
	}
	return ""
}
func (h headerCarrier) Set(string, string) {}
func (h headerCarrier) Keys() []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.Key
	}
	return out
}

var _ propagation.TextMapCarrier = headerCarrier(nil)

// notPending handles an order Finalize did not change: it is final already
// (a redelivery, whose reservation is the first delivery's) or it does not
// exist (a message no placement wrote), whose stock this delivery just
// reserved and now gives back before dead-lettering it.
func (w *Worker) notPending(ctx context.Context, o *orders.Order) error {
	stored, err := w.store.Get(ctx, o.ID)
	if errors.Is(err, problem.ErrNotFound) {
		if err := w.catalog.Release(ctx, o.ID.String()); err != nil {
			return fmt.Errorf("release the stock of an unknown order: %w", err)
		}
		return permanentError{err}
	}
	if err != nil {
		return err
	}
	if !stored.Final() {
		return fmt.Errorf("order %s is still pending after its conditional update applied nothing", o.ID)
	}
	w.metrics.outcomes.WithLabelValues("duplicate").Inc()
	return nil
}

// Process takes one orders.placed message to its effect. It is safe to run
// any number of times for the same message.
func (w *Worker) Process(ctx context.Context, m kafka.Message) (err error) {
	parent := otel.GetTextMapPropagator().Extract(ctx, headerCarrier(m.Headers))
	ctx, span := w.tracer.Start(parent, "process "+m.Topic, trace.WithSpanKind(trace.SpanKindConsumer),
		// OpenTelemetry's messaging semantic conventions.
		trace.WithAttributes(attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(m.Partition)),
			attribute.Int64("messaging.kafka.offset", m.Offset),
			attribute.String("messaging.consumer.group.name", w.cfg.Group)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "order processing failed")
		}
		span.End()
	}()

	var ev orders.PlacedEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		return permanentError{fmt.Errorf("decode orders.placed: %w", err)}
	}
	// The order comes from its event, not from a read of its shard: one
	// query fewer an order on the shard and here (a fifth of this
	// process's CPU at 300 orders/s). A redelivery is told apart later, by
	// the conditional Finalize, and needs no read first: the catalog
	// keeps every reservation's outcome (it never prunes them), so
	// reserving again returns what the first delivery got.
	o, err := ev.Order(w.cfg.Shards)
	if err != nil {
		return permanentError{err}
	}
	span.SetAttributes(orders.ShardAttr.Int(o.ID.Shard), attribute.String("scaleshop.order_id", ev.OrderID))
	res, err := w.catalog.Reserve(ctx, o.ID.String(), o.Lines())
	if errors.Is(err, orders.ErrCatalogRefused) {
		return permanentError{fmt.Errorf("reserve stock: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("reserve stock: %w", err)
	}
	switch {
	case res == orders.OutOfStock:
		o.Status, o.Reason = orders.StatusRejected, orders.ReasonOutOfStock
	case res == orders.Released:
		// An earlier delivery declined the payment and gave the stock back,
		// then died before recording it.
		o.Status, o.Reason = orders.StatusRejected, orders.ReasonPaymentDeclined
	case orders.PaymentApproved(o):
		o.Status = orders.StatusConfirmed
	default:
		// Release before recording the decision: if the worker dies in
		// between, the redelivery reserves (idempotent), declines and
		// releases again. The other order would leak the stock.
		if err := w.catalog.Release(ctx, o.ID.String()); err != nil {
			return fmt.Errorf("release stock after declined payment: %w", err)
		}
		o.Status, o.Reason = orders.StatusRejected, orders.ReasonPaymentDeclined
	}
	o.UpdatedAt = w.now().UTC().Truncate(time.Microsecond)
	applied, err := w.store.Finalize(ctx, o)
	if err != nil {
		return err
	}
	if !applied {
		return w.notPending(ctx, o)
	}
	span.SetAttributes(attribute.String("scaleshop.order_status", string(o.Status)))
	w.metrics.final(o)
	return nil
}
