// Command ordersctl is the orders pipeline's operator tool.
//
//	ordersctl replay-dlq [-idle 3s] [-max 0]
//	ordersctl stuck [-older 30s] [-max 20]
//
// stuck lists what has not finished by itself: orders still pending after
// -older (per shard, oldest first, with how long they have waited) and the
// dead letters no replay has taken yet (with the error that put them
// there). It changes nothing.
//
// replay-dlq moves the messages the workers dead-lettered
// (orders.placed.dlq) back to orders.placed, without the dead-letter
// headers, and commits each one only after it is republished. It stops when
// the dead-letter topic has been quiet for -idle or every message that was
// there when it started is replayed. Replaying is safe at any time: a
// worker that gets an order already final changes nothing.
// KAFKA_BROKERS names the brokers (default 127.0.0.1:9092), and
// ORDERS_SHARD_<n>_DSN the shards (default: the native layout).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/config"
	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/worker"
)

func main() {
	lifecycle.Main("ordersctl", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

// ReplayGroup is the consumer group that remembers how far replays got.
const ReplayGroup = "orders-dlq-replay"

const usage = "usage: ordersctl replay-dlq [-idle 3s] [-max N] | ordersctl stuck [-older 30s] [-max 20]"

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "replay-dlq":
		return runReplay(ctx, args[1:], getenv, stdout)
	case "stuck":
		return runStuck(ctx, args[1:], getenv, stdout)
	}
	return errors.New(usage)
}

func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay-dlq", flag.ContinueOnError)
	idle := fs.Duration("idle", 3*time.Second, "stop after the dead-letter topic is quiet this long")
	limit := fs.Int("max", 0, "replay at most this many messages (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := config.New(getenv)
	brokers := env.List("KAFKA_BROKERS", []string{"127.0.0.1:9092"})
	if err := env.Err(); err != nil {
		return err
	}
	n, err := Replay(ctx, brokers, *idle, *limit)
	fmt.Fprintf(stdout, "replayed %d dead-lettered messages to %s\n", n, topology.TopicOrdersPlaced)
	return err
}

// Replay republishes the dead letters that are in the topic when it starts
// (a message that fails again is dead-lettered anew and waits for the next
// replay, so a poison message cannot loop), in batches: republish, then
// commit. It stops when every partition reached its starting end, or after
// idle without a message.
func Replay(ctx context.Context, brokers []string, idle time.Duration, limit int) (int, error) {
	ends, err := kafkax.EndOffsets(ctx, brokers[0], topology.TopicOrdersPlacedDLQ)
	if err != nil {
		return 0, err
	}
	r := kafka.NewReader(kafkax.ReaderConfig(brokers, topology.TopicOrdersPlacedDLQ, ReplayGroup))
	defer r.Close()
	w := kafkax.NewWriter(brokers, topology.TopicOrdersPlaced)
	defer w.Close()
	n := 0
	reached := map[int]bool{}
	for limit == 0 || n < limit {
		var batch []kafka.Message
		for len(batch) < 500 && (limit == 0 || n+len(batch) < limit) {
			wait := idle
			if len(batch) > 0 {
				wait = 50 * time.Millisecond // a batch is ready: send it unless more is at hand
			}
			fetchCtx, cancel := context.WithTimeout(ctx, wait)
			m, err := r.FetchMessage(fetchCtx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return n, ctx.Err()
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					return n, err
				}
				break
			}
			if m.Offset >= ends[m.Partition] {
				reached[m.Partition] = true // dead-lettered after we started: next time
				continue
			}
			batch = append(batch, m)
		}
		if len(batch) == 0 {
			return n, nil // quiet, or everything up to the starting ends is replayed
		}
		out := make([]kafka.Message, len(batch))
		for i, m := range batch {
			out[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: append(worker.WithoutDLQHeaders(m.Headers),
				kafka.Header{Key: "scaleshop-replayed-from", Value: fmt.Appendf(nil, "%s/%d/%d", m.Topic, m.Partition, m.Offset)})}
		}
		if err := w.WriteMessages(ctx, out...); err != nil {
			return n, fmt.Errorf("republish: %w", err)
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			return n, fmt.Errorf("commit: %w", err)
		}
		n += len(batch)
		if len(reached) == len(ends) {
			return n, nil
		}
	}
	return n, nil
}
