package relay_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/scaleshop/scaleshop/infra/pgdb"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/orders/internal/ordersdb"
	"github.com/scaleshop/scaleshop/services/orders/internal/relay"
	"github.com/scaleshop/scaleshop/services/orders/internal/shardmap"
)

var testConfig = relay.Config{
	Batch: 4, LockRetry: 20 * time.Millisecond, IdlePoll: 50 * time.Millisecond,
	BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
	KeepPublished: time.Hour, IdempotencyTTL: time.Hour,
}

// fakeKafka is a Publisher that keeps what it accepted, in order. fail
// decides, per call (1-based), whether the call fails on purpose (nothing
// accepted); afterAccept runs after a call accepted its messages.
type fakeKafka struct {
	mu          sync.Mutex
	calls       int
	accepted    []int64 // outbox seqs, in the order they were published
	fail        func(call int) bool
	afterAccept func(call int)
}

func (f *fakeKafka) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	f.calls++
	call := f.calls
	if f.fail != nil && f.fail(call) {
		f.mu.Unlock()
		return fmt.Errorf("call %d: %w", call, errBrokerDown)
	}
	for _, m := range msgs {
		for _, h := range m.Headers {
			if h.Key == relay.HeaderSeq {
				seq, _ := strconv.ParseInt(string(h.Value), 10, 64)
				f.accepted = append(f.accepted, seq)
			}
		}
	}
	after := f.afterAccept
	f.mu.Unlock()
	if after != nil {
		after(call)
	}
	return nil
}

var errBrokerDown = errors.New("broker not available (on purpose)")

func (f *fakeKafka) published() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accepted)
}

// shardDB is one logical shard of the test's own, migrated.
type shardDB struct {
	dsn   string
	admin *sql.DB // the test's own session: inserts and checks
}

func newShardDB(t *testing.T) shardDB {
	t.Helper()
	stack := stacktest.Require(t)
	dsn := stack.Database(t, topology.PGOrdersA)
	shards := openShards(t, dsn) // migrates
	db, err := shards.DB(0).DB()
	if err != nil {
		t.Fatal(err)
	}
	return shardDB{dsn: dsn, admin: db}
}

func openShards(t *testing.T, dsn string) *shardmap.Shards {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shards, err := ordersdb.OpenShards(ctx, []string{dsn}, pgdb.Pool{MaxOpen: 4, MaxLifetime: time.Minute, MaxIdleTime: time.Minute}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shards.Close)
	return shards
}

// addRows writes n outbox rows as a placement would, notifying the relay.
func (s shardDB) addRows(t *testing.T, n int) {
	t.Helper()
	if _, err := s.admin.Exec(`INSERT INTO outbox (topic, key, payload)
		SELECT 'orders.placed', 'customer-' || g, convert_to('order ' || g, 'UTF8') FROM generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.Exec(`SELECT pg_notify($1, '')`, ordersdb.NotifyChannel); err != nil {
		t.Fatal(err)
	}
}

func (s shardDB) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := s.admin.QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s shardDB) waitAllMarked(t *testing.T) {
	t.Helper()
	stacktest.Eventually(t, 30*time.Second, "every outbox row published and marked", func() error {
		if n := s.count(t, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); n > 0 {
			return fmt.Errorf("%d rows unpublished", n)
		}
		return nil
	})
}

// runRelay starts a relay (its own pool, as another orders clone has) and
// returns a stop that waits until it has stopped.
func (s shardDB) runRelay(t *testing.T, pub relay.Publisher) (stop func()) {
	t.Helper()
	db, err := openShards(t, s.dsn).DB(0).DB()
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New([]*sql.DB{db}, pub, testConfig, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func seqs(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestTwoRelaysOneLeader(t *testing.T) {
	shard := newShardDB(t)
	a, b := &fakeKafka{}, &fakeKafka{}
	stopA := shard.runRelay(t, a)
	stopB := shard.runRelay(t, b)
	shard.addRows(t, 10)
	shard.waitAllMarked(t)

	if n := shard.count(t, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 1 {
		t.Errorf("%d sessions hold the shard's relay lock, want 1", n)
	}
	leader, follower, stopLeader := a, b, stopA
	if len(a.published()) == 0 {
		leader, follower, stopLeader = b, a, stopB
	}
	if got := leader.published(); !slices.Equal(got, seqs(1, 10)) {
		t.Errorf("the leader published %v, want 1..10 once each, in order", got)
	}
	if got := follower.published(); len(got) != 0 {
		t.Errorf("the follower published %v too", got)
	}

	// The leader's clone stops: the other takes the shard over and goes on
	// from the first unpublished row.
	stopLeader()
	shard.addRows(t, 6)
	shard.waitAllMarked(t)
	if got := follower.published(); !slices.Equal(got, seqs(11, 16)) {
		t.Errorf("the new leader published %v, want 11..16 in order", got)
	}
	if got := leader.published(); len(got) != 10 {
		t.Errorf("the stopped relay published %d rows, want its first 10", len(got))
	}
}

func TestFailedPublishesLoseNothingAndKeepTheOrder(t *testing.T) {
	shard := newShardDB(t)
	// The first three calls fail, then every third: the rows stay, are
	// retried, and go out once each, in order.
	pub := &fakeKafka{fail: func(call int) bool { return call <= 3 || call%3 == 0 }}
	shard.runRelay(t, pub)
	shard.addRows(t, 22)
	shard.waitAllMarked(t)
	if got := pub.published(); !slices.Equal(got, seqs(1, 22)) {
		t.Errorf("published %v, want 1..22 once each, in order", got)
	}
	pub.mu.Lock()
	calls := pub.calls
	pub.mu.Unlock()
	if calls <= 3 {
		t.Errorf("only %d publish calls; the failures were not exercised", calls)
	}
}

func TestACrashBetweenPublishAndMarkRepublishesThatBatchOnly(t *testing.T) {
	shard := newShardDB(t)
	// The second batch reaches Kafka, then the leader's session dies before
	// its rows are marked, as when the clone is killed right there.
	pub := &fakeKafka{}
	pub.afterAccept = func(call int) {
		if call != 2 {
			return
		}
		if _, err := shard.admin.Exec(`SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Errorf("kill the leader's session: %v", err)
		}
	}
	shard.addRows(t, 12)
	shard.runRelay(t, pub)
	shard.waitAllMarked(t)

	got := pub.published()
	var firsts []int64
	seen := map[int64]int{}
	for _, s := range got {
		if seen[s]++; seen[s] == 1 {
			firsts = append(firsts, s)
		}
	}
	if !slices.Equal(firsts, seqs(1, 12)) {
		t.Errorf("first deliveries %v, want 1..12 in order (all of them: nothing lost)", firsts)
	}
	var again []int64
	for s, n := range seen {
		if n > 1 {
			again = append(again, s)
		}
	}
	slices.Sort(again)
	if !slices.Equal(again, seqs(5, 8)) {
		t.Errorf("published more than once: %v, want exactly the unmarked batch 5..8 (at least once, never more than the crash requires)", again)
	}
}
