package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/worker"
)

// deadLetters returns the dead letters with key, oldest first.
func deadLetters(ctx context.Context, t *testing.T, brokers []string, key string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := range topology.TopicPartitions {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topology.TopicOrdersPlacedDLQ, p)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topology.TopicOrdersPlacedDLQ,
			Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
		_ = r.SetOffset(first)
		for {
			m, err := r.ReadMessage(ctx) // a partition reader: no group, nothing committed
			if err != nil {
				r.Close()
				t.Fatal(err)
			}
			if string(m.Key) == key {
				out = append(out, m)
			}
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// TestPoisonMessageIsDeadLetteredAndReplayed: a message no worker can
// process goes to orders.placed.dlq with its error and the partition moves
// on; replay-dlq sends it back, and (still poison) it is dead-lettered again,
// now marked as replayed.
func TestPoisonMessageIsDeadLetteredAndReplayed(t *testing.T) {
	stack := stacktest.Require(t)
	brokers := stack.Endpoints.KafkaBrokers
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := fmt.Sprintf("poison-%x", rand.Uint64())
	w := kafkax.NewWriter(brokers, topology.TopicOrdersPlaced)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: []byte(`{"order_id": 42`)}); err != nil {
		t.Fatal(err)
	}
	stacktest.Eventually(t, 30*time.Second, "the poison message is dead-lettered", func() error {
		dl := deadLetters(ctx, t, brokers, key)
		if len(dl) != 1 {
			return fmt.Errorf("%d dead letters with key %s", len(dl), key)
		}
		if header(dl[0], worker.HeaderDLQError) == "" {
			t.Fatal("the dead letter does not say why")
		}
		return nil
	})
	n, err := Replay(ctx, brokers, 2*time.Second, 0)
	if err != nil || n < 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	stacktest.Eventually(t, 30*time.Second, "the replayed poison is dead-lettered again", func() error {
		dl := deadLetters(ctx, t, brokers, key)
		if len(dl) != 2 {
			return fmt.Errorf("%d dead letters with key %s, want 2", len(dl), key)
		}
		if header(dl[1], "scaleshop-replayed-from") == "" {
			t.Fatal("the second dead letter is not marked as replayed")
		}
		return nil
	})
}
