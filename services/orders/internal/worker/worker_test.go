package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

type harness struct {
	store   *orderstest.Store
	catalog *orderstest.Catalog
	dlq     *fakeWriter
	w       *Worker
	metrics *Metrics
	logs    syncBuffer
}

// syncBuffer is a log sink the worker's goroutines may write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{store: orderstest.NewStore(), catalog: orderstest.NewCatalog(3, 10), dlq: &fakeWriter{}}
	cfg := DefaultConfig(8)
	cfg.BackoffMin, cfg.BackoffMax = time.Millisecond, 2*time.Millisecond
	h.metrics = NewMetrics(prometheus.NewRegistry())
	h.w = New(h.store, h.catalog, h.dlq, cfg, telemetry.NewLogger(&h.logs, "worker", "worker-test"), h.metrics)
	return h
}

// eventually polls cond until it holds or a generous deadline passes (a
// wait for the worker's goroutines, not a bound on their speed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// place accepts an order through the real service and returns its message.
func (h *harness) place(t *testing.T, customer string, lines ...orders.Line) (*orders.Order, kafka.Message) {
	t.Helper()
	svc := orders.NewService(h.store, h.catalog, orderstest.Backlog(false), 8)
	o, _, err := svc.Place(context.Background(), orders.Identity{CustomerID: customer}, "", lines)
	if err != nil {
		t.Fatal(err)
	}
	ev := orders.PlacedEventOf(o)
	return o, kafka.Message{Topic: ev.Topic, Key: []byte(ev.Key), Value: ev.Payload}
}

func (h *harness) status(t *testing.T, id orders.ID) *orders.Order {
	t.Helper()
	o, err := h.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func statusEvents(s *orderstest.Store) int {
	n := 0
	for _, ev := range s.Events {
		if ev.Topic == "orders.status" {
			n++
		}
	}
	return n
}

func TestProcessDecidesOnceEvenWhenDeliveredTwice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		customer  string
		qty       int
		status    orders.Status
		reason    orders.Reason
		stockLeft int
	}{
		{"confirmed", "alice", 4, orders.StatusConfirmed, "", 6},
		{"out of stock", "alice", 11, orders.StatusRejected, orders.ReasonOutOfStock, 10},
		{"payment declined releases the stock", "decline-bob", 4, orders.StatusRejected, orders.ReasonPaymentDeclined, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			o, m := h.place(t, tc.customer, orders.Line{ProductID: 1, Quantity: tc.qty})
			for range 2 { // the same message delivered twice
				if err := h.w.Process(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			got := h.status(t, o.ID)
			if got.Status != tc.status || got.Reason != tc.reason {
				t.Fatalf("order is %s/%s, want %s/%s", got.Status, got.Reason, tc.status, tc.reason)
			}
			if left := h.catalog.StockOf(1); left != tc.stockLeft {
				t.Fatalf("stock %d, want %d", left, tc.stockLeft)
			}
			if n := statusEvents(h.store); n != 1 {
				t.Fatalf("%d status events, want exactly 1", n)
			}
		})
	}
}

func TestProcessAfterCrashBetweenReleaseAndRecord(t *testing.T) {
	h := newHarness(t)
	o, m := h.place(t, "decline-carol", orders.Line{ProductID: 2, Quantity: 3})
	// The first delivery reserved and released, then died before Finalize.
	ctx := context.Background()
	if _, err := h.catalog.Reserve(ctx, o.ID.String(), o.Lines()); err != nil {
		t.Fatal(err)
	}
	if err := h.catalog.Release(ctx, o.ID.String()); err != nil {
		t.Fatal(err)
	}
	if err := h.w.Process(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := h.status(t, o.ID); got.Reason != orders.ReasonPaymentDeclined {
		t.Fatalf("order %s/%s, want rejected/payment_declined", got.Status, got.Reason)
	}
	if left := h.catalog.StockOf(2); left != 10 {
		t.Fatalf("stock %d, want 10 (nothing kept)", left)
	}
}

// readsCounted is a store that counts the worker's reads of orders.
type readsCounted struct {
	Store
	reads int
}

func (s *readsCounted) Get(ctx context.Context, id orders.ID) (*orders.Order, error) {
	s.reads++
	return s.Store.Get(ctx, id)
}

// TestFirstDeliveryReadsNoOrder: the order comes from its event, so a
// first delivery costs its shard the decision's one statement and no read;
// only a redelivery, which the conditional update tells apart, reads it.
func TestFirstDeliveryReadsNoOrder(t *testing.T) {
	h := newHarness(t)
	counted := &readsCounted{Store: h.store}
	h.w.store = counted
	o, m := h.place(t, "erin", orders.Line{ProductID: 3, Quantity: 2})
	if err := h.w.Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if counted.reads != 0 {
		t.Fatalf("the first delivery read the order %d times, want 0", counted.reads)
	}
	if got := h.status(t, o.ID); got.Status != orders.StatusConfirmed || got.TotalCents != o.TotalCents || len(got.Items) != 1 {
		t.Fatalf("order after processing: %+v, want the placed order confirmed", got)
	}
	if err := h.w.Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if counted.reads != 1 || testutil.ToFloat64(h.metrics.outcomes.WithLabelValues("duplicate")) != 1 {
		t.Fatalf("the redelivery read the order %d times and counted %v duplicates, want 1 and 1",
			counted.reads, testutil.ToFloat64(h.metrics.outcomes.WithLabelValues("duplicate")))
	}
}

// TestEventOfAnOrderNobodyPlacedGivesItsStockBack: a well-formed event whose
// order is on no shard reserves stock before the decision finds no order;
// the worker releases it and dead-letters the message.
func TestEventOfAnOrderNobodyPlacedGivesItsStockBack(t *testing.T) {
	h := newHarness(t)
	forged := orders.PlacedEvent{OrderID: "3-01a21b78-ba4a-7db8-b18a-b89a9681d113", CustomerID: "mallory",
		Items: []orders.Item{{ProductID: 2, Quantity: 4, PriceCents: 100}}, TotalCents: 400, Currency: "EUR"}
	value, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	err = h.w.Process(context.Background(), kafka.Message{Topic: "orders.placed", Value: value})
	if _, permanent := err.(permanentError); !permanent {
		t.Fatalf("Process = %v, want a permanent error (dead letter)", err)
	}
	if left := h.catalog.StockOf(2); left != 10 {
		t.Fatalf("stock %d after an order nobody placed, want 10", left)
	}
}

func TestRunRetriesThenDeadLettersAndMovesOn(t *testing.T) {
	h := newHarness(t)
	_, good := h.place(t, "dave", orders.Line{ProductID: 1, Quantity: 1})
	poison := kafka.Message{Topic: "orders.placed", Partition: 2, Offset: 7, Value: []byte("{not json")}
	unknown := good
	unknown.Value = []byte(`{"order_id":"3-01a21b78-ba4a-7db8-b18a-b89a9681d113"}`) // no such order
	good.Partition, good.Offset = 2, 9
	unknown.Partition, unknown.Offset = 2, 8
	f := &fakeFetcher{msgs: []kafka.Message{poison, unknown, good}}
	ctx, cancel := context.WithCancel(context.Background())
	f.onAllCommitted = cancel
	if err := h.w.Run(ctx, f); err != nil {
		t.Fatal(err)
	}
	got := f.committedOffsets()
	if len(got) == 0 || got[len(got)-1] != 9 || !slices.IsSorted(got) {
		t.Fatalf("committed offsets %v, want ascending up to 9 (each commit covers the offsets before it)", got)
	}
	if len(h.dlq.msgs) != 2 {
		t.Fatalf("%d dead letters, want 2", len(h.dlq.msgs))
	}
	if errHeader := headerCarrier(h.dlq.msgs[0].Headers).Get(HeaderDLQError); errHeader == "" {
		t.Fatal("dead letter carries no error")
	}
}

// TestCatalogOutageWaitsInsteadOfDeadLettering: an order whose catalog is
// away keeps its lane (and its partition's commit) waiting, retried far
// past any fixed attempt count, is never dead-lettered, and is confirmed
// once the catalog answers, with no command run by hand. Every log line
// about it carries the trace id its message brought.
func TestCatalogOutageWaitsInsteadOfDeadLettering(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	h := newHarness(t)
	o, m := h.place(t, "erin", orders.Line{ProductID: 1, Quantity: 1})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	m.Headers = append(m.Headers, kafka.Header{Key: "traceparent", Value: []byte("00-" + traceID + "-00f067aa0ba902b7-01")})
	m.Partition, m.Offset = 1, 5
	h.catalog.SetFail(fmt.Errorf("catalog: %w", problem.ErrUnavailable))

	f := &fakeFetcher{msgs: []kafka.Message{m}}
	ctx, cancel := context.WithCancel(context.Background())
	f.onAllCommitted = cancel
	ran := make(chan error, 1)
	go func() { ran <- h.w.Run(ctx, f) }()

	eventually(t, "30 reserve attempts", func() bool { return h.catalog.ReserveCalls() >= 30 })
	if n := len(h.dlq.written()); n != 0 {
		t.Fatalf("%d dead letters during a catalog outage, want 0", n)
	}
	if got := f.committedOffsets(); len(got) != 0 {
		t.Fatalf("offsets %v committed while the order waits: the partition skipped ahead", got)
	}
	if v := testutil.ToFloat64(h.metrics.parked); v != 1 {
		t.Fatalf("orders_worker_parked_messages = %v while the catalog is away, want 1", v)
	}

	h.catalog.SetFail(nil)
	if err := <-ran; err != nil { // Run ends once offset 5 is committed
		t.Fatal(err)
	}
	if got := h.status(t, o.ID); got.Status != orders.StatusConfirmed {
		t.Fatalf("order is %s once the catalog answered, want confirmed", got.Status)
	}
	if n := len(h.dlq.written()); n != 0 {
		t.Fatalf("%d dead letters, want 0", n)
	}
	if v := testutil.ToFloat64(h.metrics.parked); v != 0 {
		t.Fatalf("orders_worker_parked_messages = %v after the order finished, want 0", v)
	}
	retried := 0
	for _, l := range h.logs.lines() {
		if l["msg"] == "order waits for a dependency; retrying" {
			retried++
			if l["trace_id"] != traceID {
				t.Fatalf("log line %v carries trace_id %v, want the order's %s", l, l["trace_id"], traceID)
			}
		}
	}
	if retried == 0 {
		t.Fatal("no log line says the order is waiting")
	}
}

// TestUnknownProductIsDeadLetteredAtOnce: a request the catalog refuses
// (an unknown product) can never succeed; it is dead-lettered on the first
// try, with the reason, and the partition moves on.
func TestUnknownProductIsDeadLetteredAtOnce(t *testing.T) {
	h := newHarness(t)
	_, m := h.place(t, "frank", orders.Line{ProductID: 1, Quantity: 1})
	h.catalog.SetFail(fmt.Errorf("catalog: 404 no product 1: %w", orders.ErrCatalogRefused))
	if !h.handleOnce(t, m) {
		t.Fatal("not done with")
	}
	if h.catalog.ReserveCalls() != 1 {
		t.Fatalf("%d reserve calls, want 1 (never retried)", h.catalog.ReserveCalls())
	}
	dl := h.dlq.written()
	if len(dl) != 1 || !strings.Contains(headerCarrier(dl[0].Headers).Get(HeaderDLQError), "no product") {
		t.Fatalf("dead letters %v, want one that says why", dl)
	}
}

func (h *harness) handleOnce(t *testing.T, m kafka.Message) bool {
	t.Helper()
	return h.w.handle(context.Background(), m)
}

type fakeWriter struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (w *fakeWriter) written() []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msgs...)
	return nil
}

type fakeFetcher struct {
	mu             sync.Mutex
	msgs           []kafka.Message
	next           int
	committed      []kafka.Message
	commits        int
	onAllCommitted func()
}

func (f *fakeFetcher) FetchMessage(ctx context.Context) (kafka.Message, error) {
	f.mu.Lock()
	if f.next < len(f.msgs) {
		m := f.msgs[f.next]
		f.next++
		f.mu.Unlock()
		return m, nil
	}
	f.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (f *fakeFetcher) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.committed = append(f.committed, msgs...)
	f.commits++
	for _, m := range msgs {
		if m.Offset == f.msgs[len(f.msgs)-1].Offset && f.onAllCommitted != nil {
			f.onAllCommitted()
		}
	}
	return nil
}

func (f *fakeFetcher) committedOffsets() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int64
	for _, m := range f.committed {
		out = append(out, m.Offset)
	}
	return out
}

// TestCommitsCoalesceAndShutdownCommitsTheRest: an idle worker commits at
// once; what is done within CommitEvery after a commit shares the next one
// (the broker pays a request per commit), and stopping commits everything
// done, so nothing but that interval's redelivery is at stake.
func TestCommitsCoalesceAndShutdownCommitsTheRest(t *testing.T) {
	h := newHarness(t)
	h.w.cfg.CommitEvery = time.Hour
	f := &fakeFetcher{msgs: []kafka.Message{{Offset: 19}}}
	c := newCommitter()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.w.commitLoop(ctx, f, c)
	}()
	c.add(kafka.Message{Offset: 0})
	eventually(t, "the first commit", func() bool { return len(f.committedOffsets()) == 1 })
	for off := range int64(19) {
		c.add(kafka.Message{Offset: off + 1})
	}
	// Time for a loop that commits at every kick to show it (this bounds
	// nothing the right loop does: it waits an hour).
	time.Sleep(50 * time.Millisecond)
	if got := f.committedOffsets(); len(got) != 1 {
		t.Fatalf("committed %v within the interval; want only the first commit until it passes", got)
	}
	cancel()
	<-stopped
	if got := f.committedOffsets(); !slices.Equal(got, []int64{0, 19}) || f.commits != 2 {
		t.Fatalf("%d commits of offsets %v; want 2: offset 0 at once, then 19 on shutdown for everything done within the interval", f.commits, got)
	}
}

func TestOnlyAContiguousDonePrefixIsCommittable(t *testing.T) {
	p := &partition{}
	for off := int64(10); off < 15; off++ {
		p.fetched(kafka.Message{Offset: off})
	}
	step := func(done int64, wantOK bool, want int64) {
		t.Helper()
		m, ok := p.done(done)
		if ok != wantOK || (ok && m.Offset != want) {
			t.Fatalf("done(%d) = %d, %v; want %d, %v", done, m.Offset, ok, want, wantOK)
		}
	}
	step(12, false, 0) // 10 and 11 still running: nothing may be committed
	step(11, false, 0)
	step(10, true, 12) // 10, 11, 12 done: commit up to 12
	step(14, false, 0)
	step(13, true, 14)
}
