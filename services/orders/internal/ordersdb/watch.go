package ordersdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/scaleshop/scaleshop/services/orders/internal/orders"
)

// StatusChannel is notified with an order's orders.status event (JSON)
// when it becomes final. Workers of before that sent the bare uuid.
const StatusChannel = "orders_status"

// Watcher wakes long polls when their order becomes final: one LISTEN
// session per shard per API clone instead of every waiting request polling
// the database. Postgres delivers every notification to a session that is
// listening, so one can be lost only while a shard's session is down; each
// time a session starts listening, the watcher wakes every waiter of that
// shard to read its order once, which covers the decisions made meanwhile.
type Watcher struct {
	dbs  []*sql.DB
	log  *slog.Logger
	mu   sync.Mutex
	subs map[orders.ID]map[chan orders.StatusEvent]struct{}
}

var _ orders.StatusWaiter = (*Watcher)(nil)

// NewWatcher watches the shards' pools.
func NewWatcher(dbs []*sql.DB, log *slog.Logger) *Watcher {
	return &Watcher{dbs: dbs, log: log, subs: map[orders.ID]map[chan orders.StatusEvent]struct{}{}}
}

// Subscribe implements orders.StatusWaiter.
func (w *Watcher) Subscribe(id orders.ID) (<-chan orders.StatusEvent, func()) {
	ch := make(chan orders.StatusEvent, 1)
	w.mu.Lock()
	if w.subs[id] == nil {
		w.subs[id] = map[chan orders.StatusEvent]struct{}{}
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

func (w *Watcher) notify(id orders.ID, ev orders.StatusEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[id] {
		select {
		case ch <- ev:
		default:
			// A bare wake-up (wakeShard's) is still waiting: the decision
			// says more, and spares the waiter its read.
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// wakeShard tells every waiter of shard to read its order: the decision
// may have come while nobody was listening.
func (w *Watcher) wakeShard(shard int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, chs := range w.subs {
		if id.Shard != shard {
			continue
		}
		for ch := range chs {
			select {
			case ch <- orders.StatusEvent{}:
			default:
			}
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
		w.wakeShard(shard)
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The session is listening: never hand it back to the pool.
				return driver.ErrBadConn
			}
			if id, ev, ok := parseStatus(n.Payload, shard, len(w.dbs)); ok {
				w.notify(id, ev)
			}
		}
	})
}

// parseStatus reads a status notification of shard: the order's event, or
// a bare uuid (from a worker of before the event rode along), which wakes
// its waiters to read the order.
func parseStatus(payload string, shard, shards int) (orders.ID, orders.StatusEvent, bool) {
	if u, err := uuid.Parse(payload); err == nil {
		return orders.ID{Shard: shard, UUID: u}, orders.StatusEvent{}, true
	}
	var ev orders.StatusEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return orders.ID{}, ev, false
	}
	id, err := orders.ParseID(ev.OrderID, shards)
	if err != nil || id.Shard != shard {
		return orders.ID{}, ev, false
	}
	return id, ev, true
}
