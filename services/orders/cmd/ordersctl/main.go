// Command ordersctl is the orders pipeline's operator tool.
//
//	ordersctl replay-dlq [-idle 3s] [-max 0]
//
// replay-dlq moves the messages the workers dead-lettered
// (orders.placed.dlq) back to orders.placed, without the dead-letter
// headers, and commits each one only after it is republished. It stops when
// the dead-letter topic has been quiet for -idle. Replaying is safe at any
// time: a worker that gets an order already final changes nothing.
// KAFKA_BROKERS names the brokers (default 127.0.0.1:9092).
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

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "replay-dlq" {
		return errors.New("usage: ordersctl replay-dlq [-idle 3s] [-max N]")
	}
	fs := flag.NewFlagSet("replay-dlq", flag.ContinueOnError)
	idle := fs.Duration("idle", 3*time.Second, "stop after the dead-letter topic is quiet this long")
	limit := fs.Int("max", 0, "replay at most this many messages (0: all)")
	if err := fs.Parse(args[1:]); err != nil {
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

// Replay republishes dead letters until the topic is quiet for idle.
func Replay(ctx context.Context, brokers []string, idle time.Duration, limit int) (int, error) {
	r := kafka.NewReader(kafkax.ReaderConfig(brokers, topology.TopicOrdersPlacedDLQ, ReplayGroup))
	defer r.Close()
	w := kafkax.NewWriter(brokers, topology.TopicOrdersPlaced)
	defer w.Close()
	n := 0
	for limit == 0 || n < limit {
		fetchCtx, cancel := context.WithTimeout(ctx, idle)
		m, err := r.FetchMessage(fetchCtx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return n, nil // quiet: done
			}
			return n, err
		}
		out := kafka.Message{Key: m.Key, Value: m.Value, Headers: append(worker.WithoutDLQHeaders(m.Headers),
			kafka.Header{Key: "scaleshop-replayed-from", Value: fmt.Appendf(nil, "%s/%d/%d", m.Topic, m.Partition, m.Offset)})}
		if err := w.WriteMessages(ctx, out); err != nil {
			return n, fmt.Errorf("republish: %w", err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return n, fmt.Errorf("commit: %w", err)
		}
		n++
	}
	return n, nil
}
