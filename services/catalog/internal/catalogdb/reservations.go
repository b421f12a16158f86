package catalogdb

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

type reservationRow struct {
	OrderID string
	Status  string
	Items   []byte
}

func (r reservationRow) reservation() (catalog.Reservation, error) {
	res := catalog.Reservation{OrderID: r.OrderID, Status: r.Status}
	if err := json.Unmarshal(r.Items, &res.Items); err != nil {
		return res, fmt.Errorf("reservation %s: stored items: %w", r.OrderID, err)
	}
	return res, nil
}

// Reserve takes the stock of every item or of none, in one transaction on
// the primary: reserve_stock (migration 3), one round trip. The
// reservations row, keyed by order id, is inserted first: a concurrent
// duplicate blocks on it until this transaction ends and then returns the
// stored outcome, so nothing is reserved twice. Product rows are locked in
// id order, so two orders never deadlock, and CHECK (stock >= 0) backs the
// "never below zero" rule.
func (s *Store) Reserve(ctx context.Context, req catalog.ReservationRequest) (catalog.Reservation, []catalog.Product, error) {
	items, err := json.Marshal(req.Items)
	if err != nil {
		return catalog.Reservation{}, nil, err
	}
	var rows []reserveRow
	_, err = s.writeToken(ctx, false, func(db *gorm.DB) error {
		return db.Raw(`SELECT outcome, `+columns+` FROM reserve_stock(?, ?::jsonb)`, req.OrderID, string(items)).Find(&rows).Error
	})
	if err != nil {
		return catalog.Reservation{}, nil, err
	}
	if len(rows) == 0 {
		return catalog.Reservation{}, nil, fmt.Errorf("reservation %s: reserve_stock returned no outcome", req.OrderID)
	}
	switch rows[0].Outcome {
	case "duplicate":
		var stored catalog.Reservation
		_, err := s.writeToken(ctx, false, func(db *gorm.DB) error {
			stored, err = storedReservation(db, req.OrderID)
			return err
		})
		return stored, nil, err
	case catalog.StatusOutOfStock:
		return catalog.Reservation{OrderID: req.OrderID, Status: catalog.StatusOutOfStock, Items: req.Items}, nil, nil
	}
	changed := make([]productRow, len(rows))
	for i, r := range rows {
		changed[i] = r.productRow
	}
	return catalog.Reservation{OrderID: req.OrderID, Status: catalog.StatusReserved, Items: req.Items}, products(changed), nil
}

// reserveRow is one row of reserve_stock: its outcome and, when it
// reserved, a product it changed.
type reserveRow struct {
	Outcome    string
	productRow `gorm:"embedded"`
}

// Release gives a reserved order's stock back, once: the row lock on the
// reservation serialises concurrent releases and the status records that it
// happened. An unknown order id changes nothing.
func (s *Store) Release(ctx context.Context, orderID string) (catalog.Reservation, []catalog.Product, error) {
	var changed []catalog.Product
	_, err := s.writeToken(ctx, false, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			changed = nil
			var rows []reservationRow
			if err := tx.Raw(`SELECT order_id, status, items FROM reservations WHERE order_id = ? FOR UPDATE`, orderID).
				Find(&rows).Error; err != nil {
				return err
			}
			if len(rows) == 0 || rows[0].Status == catalog.StatusReleased {
				return nil
			}
			res, err := rows[0].reservation()
			if err != nil {
				return err
			}
			if res.Status == catalog.StatusReserved {
				for _, it := range res.Items {
					p, err := adjustStock(tx, it.ProductID, it.Quantity)
					if err != nil {
						return err
					}
					changed = append(changed, p...)
				}
			}
			return tx.Exec(`UPDATE reservations SET status = ?, released_at = now() WHERE order_id = ?`,
				catalog.StatusReleased, orderID).Error
		})
	})
	if err != nil {
		return catalog.Reservation{}, nil, err
	}
	return catalog.Reservation{OrderID: orderID, Status: catalog.StatusReleased}, changed, nil
}

// adjustStock changes one product's stock by delta and bumps its version,
// since the representation (and so its ETag) changed. A product deleted
// since the reservation returns nothing.
func adjustStock(tx *gorm.DB, id, delta int64) ([]catalog.Product, error) {
	var rows []productRow
	err := tx.Raw(`UPDATE products SET stock = stock + ?, version = version + 1, updated_at = now()
		WHERE id = ? RETURNING `+columns, delta, id).Find(&rows).Error
	return products(rows), err
}

func storedReservation(tx *gorm.DB, orderID string) (catalog.Reservation, error) {
	var rows []reservationRow
	if err := tx.Raw(`SELECT order_id, status, items FROM reservations WHERE order_id = ?`, orderID).
		Find(&rows).Error; err != nil {
		return catalog.Reservation{}, err
	}
	if len(rows) == 0 {
		return catalog.Reservation{}, fmt.Errorf("reservation %s vanished after a conflict", orderID)
	}
	return rows[0].reservation()
}
