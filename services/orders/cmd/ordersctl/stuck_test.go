package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/kafkax"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// TestStuckListsOldPendingOrdersAndDeadLetters: an order pending for ten
// minutes (its outbox row lost, so nothing will ever finish it) shows in
// the workers' orders_oldest_pending_age_seconds for its shard and in
// `ordersctl stuck`, and so does a dead letter no replay has taken.
func TestStuckListsOldPendingOrdersAndDeadLetters(t *testing.T) {
	stack := stacktest.Require(t)
	ep := stack.Endpoints
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const shard = 5
	id := orders.ID{Shard: shard, UUID: uuid.Must(uuid.NewV7())}
	conn, err := pgx.Connect(ctx, ep.OrdersShardDSNs[shard])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO orders (id, customer_id, status, total_cents, currency, created_at, updated_at)
		VALUES ($1, 'stuck-test', 'pending', 100, 'USD', now() - interval '10 minutes', now() - interval '10 minutes')`, id.UUID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DELETE FROM orders WHERE id = $1`, id.UUID) })

	key := fmt.Sprintf("stuck-poison-%x", rand.Uint64())
	w := kafkax.NewWriter(ep.KafkaBrokers, topology.TopicOrdersPlaced)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: []byte(`not an order`)}); err != nil {
		t.Fatal(err)
	}

	stacktest.Eventually(t, 30*time.Second, "the workers report the ten-minute-old pending order", func() error {
		age := oldestPendingAge(t, ep.WorkerURLs, strconv.Itoa(shard))
		if age < 600 {
			return fmt.Errorf("orders_oldest_pending_age_seconds{shard=%q} = %v, want ≥ 600", strconv.Itoa(shard), age)
		}
		return nil
	})

	getenv := func(k string) string {
		if k == "KAFKA_BROKERS" {
			return strings.Join(ep.KafkaBrokers, ",")
		}
		for i, dsn := range ep.OrdersShardDSNs {
			if k == fmt.Sprintf("ORDERS_SHARD_%d_DSN", i) {
				return dsn
			}
		}
		return ""
	}
	stacktest.Eventually(t, 30*time.Second, "ordersctl stuck lists the order and the dead letter", func() error {
		var out bytes.Buffer
		if err := run(ctx, []string{"stuck", "-older", "5m", "-max", "1000"}, getenv, &out); err != nil {
			t.Fatalf("ordersctl stuck: %v", err)
		}
		switch {
		case !strings.Contains(out.String(), id.String()):
			return fmt.Errorf("the pending order %s is not listed:\n%s", id, out.String())
		case !strings.Contains(out.String(), "key "+key):
			return fmt.Errorf("the dead letter %s is not listed:\n%s", key, out.String())
		}
		return nil
	})
}

// oldestPendingAge is the largest orders_oldest_pending_age_seconds the
// workers export for shard.
func oldestPendingAge(t *testing.T, workers []string, shard string) float64 {
	t.Helper()
	oldest := 0.0
	for _, base := range workers {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range families["orders_oldest_pending_age_seconds"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "shard" && l.GetValue() == shard {
					oldest = max(oldest, m.GetGauge().GetValue())
				}
			}
		}
	}
	return oldest
}
