package ordersdb

import (
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

func TestStatusNotificationsCarryTheDecisionOrOnlyTheOrder(t *testing.T) {
	id, err := orders.NewID(3)
	if err != nil {
		t.Fatal(err)
	}
	o := &orders.Order{ID: id, CustomerID: "grace", Status: orders.StatusRejected, Reason: orders.ReasonOutOfStock,
		UpdatedAt: time.Date(2026, 12, 3, 14, 0, 0, 123000, time.UTC)}
	event := string(orders.StatusEventOf(o).Payload)

	got, ev, ok := parseStatus(event, 3, 8)
	if !ok || got != id || ev.Status != orders.StatusRejected || ev.Reason != orders.ReasonOutOfStock || !ev.UpdatedAt.Equal(o.UpdatedAt) {
		t.Fatalf("event payload: %v %+v %v; want %s rejected out_of_stock", got, ev, ok, id)
	}
	// A worker of before the event rode along sent the bare uuid: its
	// waiters wake and read the order.
	got, ev, ok = parseStatus(id.UUID.String(), 3, 8)
	if !ok || got != id || ev.Status != "" {
		t.Fatalf("bare uuid: %v %+v %v; want %s with no decision", got, ev, ok, id)
	}
	for name, payload := range map[string]string{"another shard's order": event, "garbage": "{not json"} {
		shard := 3
		if name == "another shard's order" {
			shard = 4
		}
		if _, _, ok := parseStatus(payload, shard, 8); ok {
			t.Errorf("%s was taken for a decision", name)
		}
	}
}
