package catalogcache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
)

// fakeSRV answers an SRV lookup with the pods it is told are there, the
// way a headless Service in front of a StatefulSet does.
type fakeSRV struct {
	mu   sync.Mutex
	pods []string // "memcached-0", ...
	err  error
	asks int
}

func (f *fakeSRV) set(err error, pods ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods, f.err = pods, err
}

func (f *fakeSRV) lookup(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asks++
	if service != "" || proto != "" || name != "_memcache._tcp.memcached" {
		return "", nil, fmt.Errorf("unexpected lookup %q %q %q", service, proto, name)
	}
	if f.err != nil {
		return "", nil, f.err
	}
	var out []*net.SRV
	for _, p := range f.pods {
		out = append(out, &net.SRV{Target: p + ".memcached.shop.svc.cluster.local.", Port: 11211})
	}
	return name, out, nil
}

func (f *fakeSRV) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asks
}

const srvName = "_memcache._tcp.memcached"

func pod(name string) string { return name + ".memcached.shop.svc.cluster.local:11211" }

func TestDiscoveredSelectorFailsFastUntilItHasServers(t *testing.T) {
	sel := catalogcache.NewDiscovered()
	if _, err := sel.PickServer("product:1"); !errors.Is(err, memcache.ErrNoServers) {
		t.Fatalf("PickServer with no servers = %v, want memcache.ErrNoServers (reads then go to Postgres)", err)
	}
	if got := sel.Owner("product:1"); got != "" {
		t.Errorf("Owner with no servers = %q, want empty", got)
	}
	dns := &fakeSRV{}
	dns.set(nil, "memcached-0")
	if _, err := catalogcache.SyncSRV(context.Background(), sel, srvName, dns.lookup); err != nil {
		t.Fatal(err)
	}
	addr, err := sel.PickServer("product:1")
	if err != nil || addr.String() != pod("memcached-0") {
		t.Fatalf("PickServer = %v, %v; want %s", addr, err, pod("memcached-0"))
	}
}

func TestSRVDiscoveryMovesOnlyTheKeysOfTheNodeThatCameOrWent(t *testing.T) {
	ctx := context.Background()
	sel := catalogcache.NewDiscovered()
	dns := &fakeSRV{}
	dns.set(nil, "memcached-0", "memcached-1")
	if _, err := catalogcache.SyncSRV(ctx, sel, srvName, dns.lookup); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	before := make([]string, n)
	for i := range n {
		before[i] = sel.Owner(catalogcache.ProductKey(int64(i)))
	}

	// Scale out: memcached-2 joins; a key either stays or moves to it.
	dns.set(nil, "memcached-0", "memcached-1", "memcached-2")
	changed, err := catalogcache.SyncSRV(ctx, sel, srvName, dns.lookup)
	if err != nil || !changed {
		t.Fatalf("SyncSRV after scale-out = %v, %v; want changed", changed, err)
	}
	moved := 0
	for i := range n {
		after := sel.Owner(catalogcache.ProductKey(int64(i)))
		if after != before[i] {
			if after != pod("memcached-2") {
				t.Fatalf("key %d moved from %s to %s; only moves to the new node are allowed", i, before[i], after)
			}
			moved++
		}
	}
	if moved < n/3-n/20 || moved > n/3+n/20 {
		t.Errorf("%d of %d keys moved to the third node; want about a third", moved, n)
	}

	// Scale in again: exactly the original placement comes back.
	dns.set(nil, "memcached-1", "memcached-0") // DNS order means nothing
	if _, err := catalogcache.SyncSRV(ctx, sel, srvName, dns.lookup); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got := sel.Owner(catalogcache.ProductKey(int64(i))); got != before[i] {
			t.Fatalf("key %d is on %s after scale-in, was on %s before scale-out", i, got, before[i])
		}
	}
}

func TestSRVDiscoveryKeepsTheServersWhenDNSFailsOrIsEmpty(t *testing.T) {
	ctx := context.Background()
	sel := catalogcache.NewDiscovered()
	dns := &fakeSRV{}
	dns.set(nil, "memcached-0", "memcached-1")
	if _, err := catalogcache.SyncSRV(ctx, sel, srvName, dns.lookup); err != nil {
		t.Fatal(err)
	}
	want := []string{pod("memcached-0"), pod("memcached-1")}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"lookup error", errors.New("i/o timeout")},
		{"no records", nil},
	} {
		dns.set(tc.err)
		changed, err := catalogcache.SyncSRV(ctx, sel, srvName, dns.lookup)
		if err == nil || changed {
			t.Errorf("%s: SyncSRV = %v, %v; want an error and no change", tc.name, changed, err)
		}
		if got := sel.Servers(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: servers = %v, want them kept as %v", tc.name, got, want)
		}
	}
}

func TestWatchSRVReResolvesAndReportsChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sel := catalogcache.NewDiscovered()
	dns := &fakeSRV{}
	dns.set(nil, "memcached-0")
	changes := make(chan []string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		catalogcache.WatchSRV(ctx, sel, srvName, time.Millisecond, dns.lookup,
			func(s []string) { changes <- s }, func(error) {})
	}()
	next := func() []string {
		select {
		case s := <-changes:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("the watch reported no change")
			return nil
		}
	}
	first := next()
	if fmt.Sprint(first) != fmt.Sprint([]string{pod("memcached-0")}) {
		t.Fatalf("first change = %v", first)
	}
	dns.set(nil, "memcached-0", "memcached-1")
	second := next()
	if len(second) != 2 {
		t.Fatalf("after a node joined the watch reported %v", second)
	}
	asked := dns.lookups()
	deadline := time.Now().Add(10 * time.Second)
	for dns.lookups() < asked+3 {
		if time.Now().After(deadline) {
			t.Fatal("the watch stopped re-resolving")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case s := <-changes:
		t.Errorf("an unchanged answer was reported as a change: %v", s)
	default:
	}
	cancel()
	<-done
}
