// Package orders is the orders domain: what an order is, how it is validated,
// which logical shard holds it, the payment rule, and the events it emits.
// It imports no gin, gorm or kafka-go; stores and clients implement the small
// interfaces declared here.
package orders

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// Status is an order's place in its life: pending until a worker decides,
// then confirmed or rejected, once and for good.
type Status string

// The statuses.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusRejected  Status = "rejected"
)

// Reason says why an order was rejected.
type Reason string

// The rejection reasons.
const (
	ReasonNone            Reason = ""
	ReasonOutOfStock      Reason = "out_of_stock"
	ReasonPaymentDeclined Reason = "payment_declined"
)

// Limits of one order, as docs/orders.md states them to API users.
const (
	MaxLines    = 50
	MaxQuantity = 1000
	MaxKeyLen   = 200
)

// ErrMalformedID marks a string that is not an order id; to a client it is
// the same as an order that does not exist.
var ErrMalformedID = fmt.Errorf("malformed order id: %w", problem.ErrNotFound)

// Line is one requested product and quantity.
type Line struct {
	ProductID int64 `json:"product_id"`
	Quantity  int   `json:"quantity"`
}

// Item is a line of a placed order with the unit price charged.
type Item struct {
	ProductID  int64 `json:"product_id"`
	Quantity   int   `json:"quantity"`
	PriceCents int64 `json:"price_cents"`
}

// Order is an order as stored and shown.
type Order struct {
	ID         ID
	CustomerID string
	Status     Status
	Reason     Reason
	Items      []Item
	TotalCents int64
	Currency   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Final reports whether the order left pending.
func (o *Order) Final() bool { return o.Status != StatusPending }

// Lines returns the order's items as reservation lines.
func (o *Order) Lines() []Line {
	out := make([]Line, len(o.Items))
	for i, it := range o.Items {
		out[i] = Line{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	return out
}

// Identity is who calls, as the gateway asserts it.
type Identity struct {
	CustomerID string
	Admin      bool
}

// CanRead reports whether who may see o; anyone else is told it does not
// exist, so ids of other customers' orders reveal nothing.
func (who Identity) CanRead(o *Order) bool {
	return who.Admin || (who.CustomerID != "" && who.CustomerID == o.CustomerID)
}

// Validate checks a placement request's lines.
func Validate(lines []Line) error {
	v := &problem.ValidationError{}
	if len(lines) == 0 || len(lines) > MaxLines {
		v.Add("items", fmt.Sprintf("must have 1 to %d lines", MaxLines))
	}
	seen := map[int64]bool{}
	for i, l := range lines {
		field := fmt.Sprintf("items[%d]", i)
		if l.ProductID <= 0 {
			v.Add(field+".product_id", "must be a positive product id")
		} else if seen[l.ProductID] {
			v.Add(field+".product_id", "appears on more than one line; put the total quantity on one line")
		}
		seen[l.ProductID] = true
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			v.Add(field+".quantity", fmt.Sprintf("must be 1 to %d", MaxQuantity))
		}
	}
	return v.OrNil()
}

// RequestHash fingerprints a placement request so a repeated Idempotency-Key
// can be checked against the body it was first used with. Line order does
// not matter: the same products and quantities are the same request.
func RequestHash(lines []Line) string {
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int {
		if a.ProductID != b.ProductID {
			return int(a.ProductID - b.ProductID)
		}
		return a.Quantity - b.Quantity
	})
	h := sha256.New()
	for _, l := range sorted {
		fmt.Fprintf(h, "%d:%d;", l.ProductID, l.Quantity)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ValidateKey checks an Idempotency-Key header value ("" means none).
func ValidateKey(key string) error {
	if len(key) > MaxKeyLen {
		return (&problem.ValidationError{}).Add("Idempotency-Key", fmt.Sprintf("at most %d characters", MaxKeyLen))
	}
	return nil
}

// DeclinePrefix is the simulated payment rule, documented in docs/orders.md:
// a customer whose id starts with it has every payment declined, so a load
// test or a drill can produce payment_declined rejections on purpose. Every
// other payment is approved. The rule depends only on the order, so a
// redelivered message gets the same decision.
const DeclinePrefix = "decline"

// PaymentApproved decides payment for o.
func PaymentApproved(o *Order) bool {
	return !strings.HasPrefix(o.CustomerID, DeclinePrefix)
}

// ErrIdempotencyMismatch is an Idempotency-Key reused with another body.
var ErrIdempotencyMismatch = fmt.Errorf("Idempotency-Key was already used with a different request body: %w", problem.ErrUnprocessable)

// ErrBacklog is a shard whose outbox is too far behind to accept more.
var ErrBacklog = errors.New("order intake paused: the shard's outbox backlog is over its bound")
