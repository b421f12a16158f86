package kafkax_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// TestConsumerGroupAgainstTheRealBroker is the compatibility check between
// kafka-go and the broker version infra/local/kafka/pom.xml pins: topic
// creation, acks=all produce, a two-member consumer group with
// fetch-then-commit, and committed offsets honoured by the next member.
func TestConsumerGroupAgainstTheRealBroker(t *testing.T) {
	stack := stacktest.Require(t)
	brokers := stack.Endpoints.KafkaBrokers
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	topic := fmt.Sprintf("kafkax-test-%d", rand.Int64())
	group := topic + "-group"
	if err := kafkax.EnsureTopics(ctx, brokers[0], kafkax.Topic{Name: topic, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	// Creating it again is not an error: stackctl runs this on every start.
	if err := kafkax.EnsureTopics(ctx, brokers[0], kafkax.Topic{Name: topic, Partitions: 4}); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}

	w := kafkax.NewWriter(brokers, topic)
	defer w.Close()
	if w.RequiredAcks != kafka.RequireAll {
		t.Fatalf("writer acks = %v, want RequireAll", w.RequiredAcks)
	}
	const n = 200
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "customer-%d", i%17), Value: fmt.Appendf(nil, "%d", i)}
	}
	// The first write can race the new topic's leader election.
	stacktest.Eventually(t, 30*time.Second, "produce to the new topic", func() error {
		return w.WriteMessages(ctx, msgs...)
	})

	var mu sync.Mutex
	seen := map[string]int{}
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	g, gctx := errgroup.WithContext(consumeCtx)
	for range 2 {
		g.Go(func() error {
			r := kafka.NewReader(kafkax.ReaderConfig(brokers, topic, group))
			defer r.Close()
			for {
				m, err := r.FetchMessage(gctx)
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return nil
					}
					return err
				}
				mu.Lock()
				seen[string(m.Value)]++
				done := len(seen) == n
				mu.Unlock()
				if err := r.CommitMessages(gctx, m); err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
				if done {
					stopConsuming()
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	if len(seen) != n {
		t.Fatalf("consumed %d distinct messages, want %d", len(seen), n)
	}

	// A new member of the same group starts from the committed offsets:
	// nothing is left to read.
	r := kafka.NewReader(kafkax.ReaderConfig(brokers, topic, group))
	defer r.Close()
	quiet, cancelQuiet := context.WithTimeout(ctx, 8*time.Second)
	defer cancelQuiet()
	if m, err := r.FetchMessage(quiet); err == nil {
		t.Fatalf("after commits the group re-read offset %d of partition %d", m.Offset, m.Partition)
	}
}
