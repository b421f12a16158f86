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
// the primary. The reservations row, keyed by order id, is inserted first:
// a concurrent duplicate blocks on it until this transaction ends and then
// returns the stored outcome, so nothing is reserved twice. Product rows are
// locked in id order (req.Validate sorted them), so two orders never
// deadlock, and CHECK (stock >= 0) backs the "never below zero" rule.
func (s *Store) Reserve(ctx context.Context, req catalog.ReservationRequest) (catalog.Reservation, []catalog.Product, error) {
	var (
		out     catalog.Reservation
		changed []catalog.Product
	)
	items, err := json.Marshal(req.Items)
	if err != nil {
		return out, nil, err
	}
	_, err = s.writeToken(ctx, false, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			changed = nil
			ins := tx.Exec(`INSERT INTO reservations (order_id, status, items) VALUES (?, ?, ?::jsonb)
				ON CONFLICT (order_id) DO NOTHING`, req.OrderID, catalog.StatusReserved, string(items))
			if ins.Error != nil {
				return ins.Error
			}
			if ins.RowsAffected == 0 {
				var err error
				out, err = storedReservation(tx, req.OrderID)
				return err
			}
			ids := make([]int64, len(req.Items))
			for i, it := range req.Items {
				ids[i] = it.ProductID
			}
			var stock []struct{ ID, Stock int64 }
			if err := tx.Raw(`SELECT id, stock FROM products WHERE id IN ? ORDER BY id FOR UPDATE`, ids).
				Scan(&stock).Error; err != nil {
				return err
			}
			have := make(map[int64]int64, len(stock))
			for _, r := range stock {
				have[r.ID] = r.Stock
			}
			out = catalog.Reservation{OrderID: req.OrderID, Status: catalog.StatusReserved, Items: req.Items}
			for _, it := range req.Items {
				if left, ok := have[it.ProductID]; !ok || left < it.Quantity {
					out.Status = catalog.StatusOutOfStock
					return tx.Exec(`UPDATE reservations SET status = ? WHERE order_id = ?`,
						catalog.StatusOutOfStock, req.OrderID).Error
				}
			}
			for _, it := range req.Items {
				p, err := adjustStock(tx, it.ProductID, -it.Quantity)
				if err != nil {
					return err
				}
				changed = append(changed, p...)
			}
			return nil
		})
	})
	if err != nil {
		return catalog.Reservation{}, nil, err
	}
	return out, changed, nil
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
				Scan(&rows).Error; err != nil {
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
		WHERE id = ? RETURNING `+columns, delta, id).Scan(&rows).Error
	return products(rows), err
}

func storedReservation(tx *gorm.DB, orderID string) (catalog.Reservation, error) {
	var rows []reservationRow
	if err := tx.Raw(`SELECT order_id, status, items FROM reservations WHERE order_id = ?`, orderID).
		Scan(&rows).Error; err != nil {
		return catalog.Reservation{}, err
	}
	if len(rows) == 0 {
		return catalog.Reservation{}, fmt.Errorf("reservation %s vanished after a conflict", orderID)
	}
	return rows[0].reservation()
}
