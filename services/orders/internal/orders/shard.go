package orders

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
)

// ShardAttr is the span attribute (and, as "shard", the metric label) naming
// a logical shard.
const ShardAttr = attribute.Key("scaleshop.shard")

// ShardOf maps a customer to a logical shard with a stable hash (64-bit
// FNV-1a, the same in every process and release): all of a customer's
// orders, idempotency keys and outbox rows live on that one shard, so
// placing an order is a single-shard transaction and listing a customer's
// orders touches one shard. Changing this function moves every customer:
// it is part of the on-disk format, like a schema.
func ShardOf(customerID string, shards int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(customerID))
	return int(h.Sum64() % uint64(shards))
}

// ID is an order id: the logical shard it lives on plus a UUIDv7 (time
// ordered, so ids sort roughly by creation). Its text form is
// "<shard>-<uuid>", e.g. "5-0193a8f2-6c1e-7b3a-9f00-1c2d3e4f5a6b", so a read
// by id goes straight to one shard.
type ID struct {
	Shard int
	UUID  uuid.UUID
}

// NewID returns a fresh id on shard.
func NewID(shard int) (ID, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return ID{}, fmt.Errorf("new order id: %w", err)
	}
	return ID{Shard: shard, UUID: u}, nil
}

func (id ID) String() string { return strconv.Itoa(id.Shard) + "-" + id.UUID.String() }

// ParseID reads an id's text form; shards bounds the shard number.
func ParseID(s string, shards int) (ID, error) {
	head, tail, ok := strings.Cut(s, "-")
	if !ok || head == "" || len(head) > 4 {
		return ID{}, fmt.Errorf("order id %q: %w", s, ErrMalformedID)
	}
	shard, err := strconv.Atoi(head)
	if err != nil || shard < 0 || shard >= shards || strconv.Itoa(shard) != head {
		return ID{}, fmt.Errorf("order id %q: %w", s, ErrMalformedID)
	}
	u, err := uuid.Parse(tail)
	if err != nil || len(tail) != 36 {
		return ID{}, fmt.Errorf("order id %q: %w", s, ErrMalformedID)
	}
	return ID{Shard: shard, UUID: u}, nil
}
