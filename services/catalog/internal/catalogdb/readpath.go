package catalogdb

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// ReadPathConfig bounds how stale the replica may be before reads leave it.
type ReadPathConfig struct {
	MaxLag   time.Duration // replica lag past this takes it out of the read path
	Interval time.Duration // how often both servers are probed
	Timeout  time.Duration // one probe's deadline; a hung server counts as down
}

// health is what the last probe saw.
type health struct {
	primaryUp  bool
	replicaUp  bool
	replayLSN  catalog.LSN // how far the replica has replayed
	lagBytes   int64
	lagSeconds float64
	inReadPath bool // replica up and within MaxLag
}

// readPath decides, per read, which server answers. A probe loop measures
// both servers; the decision itself reads only memory, so it costs nothing
// on the request path.
//
//   - no token: the replica while it is up and lags at most MaxLag, else the
//     primary; if the primary is down, the replica whatever its lag
//     (availability over consistency: stale reads beat no reads).
//   - a consistency token: the replica only if it has replayed that far,
//     else the primary (read-your-writes), unless the primary is down.
type readPath struct {
	cfg     ReadPathConfig
	primary *sql.DB
	replica *sql.DB

	mu      sync.RWMutex
	h       health
	history []lsnSample // the primary's WAL position over the last minute

	lagSecondsGauge prometheus.Gauge
	lagBytesGauge   prometheus.Gauge
	inReadPathGauge prometheus.Gauge
	upGauge         *prometheus.GaugeVec
}

type lsnSample struct {
	at  time.Time
	lsn catalog.LSN
}

const historyLen = 600 // samples kept to date the replica's position

func newReadPath(cfg ReadPathConfig, primary, replica *sql.DB, reg prometheus.Registerer) *readPath {
	rp := &readPath{
		cfg: cfg, primary: primary, replica: replica,
		h: health{primaryUp: true, replicaUp: true, inReadPath: true},
		lagSecondsGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catalog_replica_lag_seconds",
			Help: "How long ago the primary had the WAL the replica has replayed up to (0 when caught up).",
		}),
		lagBytesGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catalog_replica_lag_bytes",
			Help: "WAL bytes the primary has written that the replica has not replayed.",
		}),
		inReadPathGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "catalog_replica_in_read_path",
			Help: "1 while reads go to the replica, 0 while they go to the primary (replica down or lagging).",
		}),
		upGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "catalog_db_up",
			Help: "Whether the last probe of a database server succeeded, by role.",
		}, []string{"role"}),
	}
	reg.MustRegister(rp.lagSecondsGauge, rp.lagBytesGauge, rp.inReadPathGauge, rp.upGauge)
	return rp
}

// run probes until ctx ends.
func (rp *readPath) run(ctx context.Context) {
	t := time.NewTicker(rp.cfg.Interval)
	defer t.Stop()
	for {
		rp.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe reads both servers' WAL positions concurrently and updates health.
func (rp *readPath) probe(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, rp.cfg.Timeout)
	defer cancel()
	var (
		wg                 sync.WaitGroup
		primaryLSN, replay catalog.LSN
		primaryErr, repErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		primaryLSN, primaryErr = queryLSN(ctx, rp.primary, `SELECT pg_current_wal_lsn()::text`)
	}()
	go func() {
		defer wg.Done()
		// A promoted replica replays nothing; its own position is current.
		replay, repErr = queryLSN(ctx, rp.replica,
			`SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`)
	}()
	wg.Wait()
	if parent.Err() != nil {
		return // shutting down: not a verdict on the servers
	}
	rp.update(time.Now(), primaryErr == nil, primaryLSN, repErr == nil, replay)
}

func queryLSN(ctx context.Context, db *sql.DB, q string) (catalog.LSN, error) {
	var s sql.NullString
	if err := db.QueryRowContext(ctx, q).Scan(&s); err != nil {
		return 0, err
	}
	return catalog.ParseLSN(s.String)
}

// update records one probe's result; split from probe so tests can drive it.
func (rp *readPath) update(now time.Time, primaryUp bool, primaryLSN catalog.LSN, replicaUp bool, replay catalog.LSN) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	h := health{primaryUp: primaryUp, replicaUp: replicaUp, replayLSN: replay}
	if primaryUp {
		rp.history = append(rp.history, lsnSample{now, primaryLSN})
		if len(rp.history) > historyLen {
			rp.history = rp.history[len(rp.history)-historyLen:]
		}
	}
	switch {
	case !replicaUp:
		h.lagSeconds, h.lagBytes = rp.h.lagSeconds, rp.h.lagBytes // unknown: keep the last value
	case primaryUp:
		if primaryLSN > replay {
			h.lagBytes = int64(primaryLSN - replay)
		}
		h.lagSeconds = lagSeconds(now, rp.history, replay)
	default:
		// Primary down: nothing to compare with; the replica is all we have.
		h.lagSeconds, h.lagBytes = rp.h.lagSeconds, rp.h.lagBytes
	}
	h.inReadPath = replicaUp && (!primaryUp || h.lagSeconds <= rp.cfg.MaxLag.Seconds())
	rp.h = h

	rp.lagSecondsGauge.Set(h.lagSeconds)
	rp.lagBytesGauge.Set(float64(h.lagBytes))
	rp.inReadPathGauge.Set(boolFloat(h.inReadPath))
	rp.upGauge.WithLabelValues("primary").Set(boolFloat(primaryUp))
	rp.upGauge.WithLabelValues("replica").Set(boolFloat(replicaUp))
}

// lagSeconds dates the replica's replay position against the primary's
// history: the replica lacks WAL that first appeared at the earliest sample
// past its position, so it is that old. (now() - pg_last_xact_replay_timestamp()
// would grow on an idle primary and overstate lag.)
func lagSeconds(now time.Time, history []lsnSample, replay catalog.LSN) float64 {
	if len(history) == 0 || history[len(history)-1].lsn <= replay {
		return 0
	}
	i := len(history) - 1
	for i > 0 && history[i-1].lsn > replay {
		i--
	}
	return now.Sub(history[i].at).Seconds()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (rp *readPath) health() health {
	rp.mu.RLock()
	defer rp.mu.RUnlock()
	return rp.h
}

// source picks the server for a read carrying token after (0: none).
func (rp *readPath) source(after catalog.LSN) catalog.Source {
	h := rp.health()
	switch {
	case !h.primaryUp && h.replicaUp:
		return catalog.FromReplica
	case !h.inReadPath:
		return catalog.FromPrimary
	case after > h.replayLSN:
		return catalog.FromPrimary
	}
	return catalog.FromReplica
}

// markDown records a failure seen on the request path, so the next request
// does not wait for the next probe to avoid a dead server.
func (rp *readPath) markDown(role catalog.Source) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	switch role {
	case catalog.FromPrimary:
		rp.h.primaryUp = false
		rp.upGauge.WithLabelValues("primary").Set(0)
	case catalog.FromReplica:
		rp.h.replicaUp, rp.h.inReadPath = false, false
		rp.upGauge.WithLabelValues("replica").Set(0)
		rp.inReadPathGauge.Set(0)
	}
}
