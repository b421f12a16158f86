package ordersdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// StatusChannel is notified with an order's uuid when it becomes final.
const StatusChannel = "orders_status"

// Watcher wakes long polls when their order becomes final: one LISTEN
// session per shard per API clone instead of every waiting request polling
// the database. A lost notification only delays a waiter until its next
// fallback read.
type Watcher struct {
	dbs  []*sql.DB
	log  *slog.Logger
	mu   sync.Mutex
	subs map[orders.ID]map[chan struct{}]struct{}
}

var _ orders.StatusWaiter = (*Watcher)(nil)

// NewWatcher watches the shards' pools.
func NewWatcher(dbs []*sql.DB, log *slog.Logger) *Watcher {
	return &Watcher{dbs: dbs, log: log, subs: map[orders.ID]map[chan struct{}]struct{}{}}
}

// Subscribe implements orders.StatusWaiter.
func (w *Watcher) Subscribe(id orders.ID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]struct{}{}
	}
	w.subs[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs[id], ch)
		if len(w.subs[id]) == 0 {
			delete(w.subs, id)
		}
	}
}

func (w *Watcher) notify(id orders.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run listens on every shard until ctx ends, reconnecting after errors.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for shard := range w.dbs {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := w.listen(ctx, shard); err != nil && ctx.Err() == nil {
					w.log.Warn("status watch lost its session; long polls fall back to reads", "shard", shard, "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (w *Watcher) listen(ctx context.Context, shard int) error {
	conn, err := w.dbs[shard].Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, `LISTEN `+StatusChannel); err != nil {
			return err
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The session is listening: never hand it back to the pool.
				return driver.ErrBadConn
			}
			if u, err := uuid.Parse(n.Payload); err == nil {
				w.notify(orders.ID{Shard: shard, UUID: u})
			}
		}
	})
}
