package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
	"github.com/scaleshop/scaleshop/services/orders/internal/worker"
)

func runStuck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stuck", flag.ContinueOnError)
	older := fs.Duration("older", 30*time.Second, "list orders pending longer than this")
	limit := fs.Int("max", 20, "list at most this many pending orders per shard and dead letters per partition")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := config.New(getenv)
	brokers := env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"})
	dsns := shardmap.ReadDSNs(env)
	pool := pgdb.ReadPool(env, "ORDERS_DB")
	if err := env.Err(); err != nil {
		return err
	}
	shards, err := shardmap.Open(ctx, dsns, pool)
	if err != nil {
		return err
	}
	defer shards.Close()
	now := time.Now()
	stuck, err := ordersdb.New(shards).StuckPending(ctx, now.Add(-*older), *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d orders pending for more than %s\n", len(stuck), *older)
	for _, o := range stuck {
		fmt.Fprintf(stdout, "  %s  customer %s  pending %s (accepted %s)\n", o.ID, o.CustomerID,
			now.Sub(o.CreatedAt).Round(time.Second), o.CreatedAt.Format(time.RFC3339))
	}
	letters, err := UnreplayedDeadLetters(ctx, brokers, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead letters not yet replayed (ordersctl replay-dlq sends them back)\n", len(letters))
	for _, m := range letters {
		fmt.Fprintf(stdout, "  %s/%d/%d  key %s  %s  error: %s\n", m.Topic, m.Partition, m.Offset, m.Key,
			m.Time.UTC().Format(time.RFC3339), header(m, worker.HeaderDLQError))
	}
	return nil
}

// UnreplayedDeadLetters reads, without committing anything, each partition
// of the dead-letter topic from where replay-dlq's group stopped to its
// end, at most limit per partition.
func UnreplayedDeadLetters(ctx context.Context, brokers []string, limit int) ([]kafka.Message, error) {
	ends, err := endOffsetsOf(ctx, brokers[0])
	if err != nil {
		return nil, err
	}
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	fetched, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: ReplayGroup,
		Topics: map[string][]int{topology.TopicOrdersPlacedDLQ: parts}})
	if err != nil {
		return nil, fmt.Errorf("replay group offsets: %w", err)
	}
	replayed := map[int]int64{}
	for _, p := range fetched.Topics[topology.TopicOrdersPlacedDLQ] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			replayed[p.Partition] = p.CommittedOffset
		}
	}
	var out []kafka.Message
	for p, span := range ends {
		from := max(replayed[p], span.first)
		if from >= span.last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topology.TopicOrdersPlacedDLQ,
			Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
		if err := r.SetOffset(from); err != nil {
			r.Close()
			return nil, err
		}
		for n := 0; n < limit; n++ {
			m, err := r.ReadMessage(ctx) // a partition reader: no group, nothing committed
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s partition %d: %w", topology.TopicOrdersPlacedDLQ, p, err)
			}
			out = append(out, m)
			if m.Offset >= span.last-1 {
				break
			}
		}
		r.Close()
	}
	return out, nil
}

type offsetSpan struct{ first, last int64 }

// endOffsetsOf is each dead-letter partition's first and next offset.
func endOffsetsOf(ctx context.Context, broker string) (map[int]offsetSpan, error) {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topology.TopicOrdersPlacedDLQ)
	if err != nil {
		return nil, err
	}
	out := map[int]offsetSpan{}
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", broker, topology.TopicOrdersPlacedDLQ, p.ID)
		if err != nil {
			return nil, err
		}
		first, last, err := pc.ReadOffsets()
		pc.Close()
		if err != nil {
			return nil, err
		}
		out[p.ID] = offsetSpan{first, last}
	}
	return out, nil
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
