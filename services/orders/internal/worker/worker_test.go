package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders/orderstest"
)

type harness struct {
	store   *orderstest.Store
	catalog *orderstest.Catalog
	dlq     *fakeWriter
	w       *Worker
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{store: orderstest.NewStore(), catalog: orderstest.NewCatalog(3, 10), dlq: &fakeWriter{}}
	cfg := DefaultConfig(8)
	cfg.BackoffMin, cfg.BackoffMax, cfg.MaxAttempts = time.Millisecond, time.Millisecond, 3
	h.w = New(h.store, h.catalog, h.dlq, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	return h
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

func TestTransientFailureIsRetriedNotDeadLettered(t *testing.T) {
	h := newHarness(t)
	o, m := h.place(t, "erin", orders.Line{ProductID: 1, Quantity: 1})
	h.catalog.Fail = problem.ErrUnavailable
	err := h.w.withRetries(context.Background(), m)
	if !errors.Is(err, problem.ErrUnavailable) || h.catalog.Reserves != 3 {
		t.Fatalf("err %v after %d reserve calls, want unavailable after 3", err, h.catalog.Reserves)
	}
	h.catalog.Fail = nil
	if err := h.w.withRetries(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if h.status(t, o.ID).Status != orders.StatusConfirmed {
		t.Fatal("not confirmed once the catalog answered")
	}
}

type fakeWriter struct {
	mu   sync.Mutex
	msgs []kafka.Message
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
	for _, m := range msgs {
		if m.Offset == f.msgs[len(f.msgs)-1].Offset {
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
