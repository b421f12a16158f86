// Package kafkax holds the kafka-go settings that are easy to get wrong:
// a Writer literal that waits for no acks and batches for a second, a Reader
// that waits 10 s for data and commits before processing.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// NewWriter returns a Writer for topic that waits for every in-sync replica,
// flushes a batch after a few milliseconds rather than kafka-go's default of
// one second, and partitions by key with the same hash for every producer.
// Share one Writer per process: it batches across goroutines.
func NewWriter(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  3,
		WriteTimeout: 5 * time.Second,
		ReadTimeout:  5 * time.Second,
	}
}

// ReaderConfig returns a consumer-group reader configuration tuned for
// latency: MinBytes 1 and a short MaxWait, so one lone message is delivered
// at once. Callers must use FetchMessage and CommitMessages after their
// effects are durable, never ReadMessage (it commits first).
func ReaderConfig(brokers []string, topic, group string) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:           brokers,
		Topic:             topic,
		GroupID:           group,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0, // synchronous commits: CommitMessages returns after the broker has them
		SessionTimeout:    10 * time.Second,
		HeartbeatInterval: 1 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		StartOffset:       kafka.FirstOffset,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
	}
}

// Ping checks that a broker answers a metadata request within ctx.
func Ping(ctx context.Context, brokers []string) error {
	var errs []error
	for _, b := range brokers {
		conn, err := (&kafka.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		_, err = conn.Brokers()
		_ = conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("kafka %v: %w", brokers, errors.Join(errs...))
}

// Topic is a topic the stack needs.
type Topic struct {
	Name       string
	Partitions int
}

// EnsureTopics creates the topics that do not exist yet, on the controller.
func EnsureTopics(ctx context.Context, broker string, topics ...Topic) error {
	conn, err := (&kafka.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", broker)
	if err != nil {
		return fmt.Errorf("dial %s: %w", broker, err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("find controller: %w", err)
	}
	cc, err := (&kafka.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp",
		net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dial controller: %w", err)
	}
	defer cc.Close()
	cfgs := make([]kafka.TopicConfig, 0, len(topics))
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: 1})
	}
	if err := cc.CreateTopics(cfgs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topics: %w", err)
	}
	return nil
}

// EndOffsets returns the offset the next message of each partition of
// topic gets (its high-water mark): where a reader starts to see only
// what is written from now on, or stops to see only what was written so far.
func EndOffsets(ctx context.Context, broker, topic string) (map[int]int64, error) {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return nil, err
	}
	ends := map[int]int64{}
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", broker, topic, p.ID)
		if err != nil {
			return nil, err
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			return nil, err
		}
		ends[p.ID] = last
	}
	return ends, nil
}
