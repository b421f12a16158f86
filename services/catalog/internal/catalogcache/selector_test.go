package catalogcache_test

import (
	"fmt"
	"testing"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalogcache"
)

func TestRendezvousMovesOnlyTheLostServersKeys(t *testing.T) {
	three, err := catalogcache.NewRendezvous("127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213")
	if err != nil {
		t.Fatal(err)
	}
	two, _ := catalogcache.NewRendezvous("127.0.0.1:11211", "127.0.0.1:11212")
	const n = 10000
	share := map[string]int{}
	for i := range n {
		key := catalogcache.ProductKey(int64(i))
		before, after := three.Owner(key), two.Owner(key)
		share[before]++
		if before != "127.0.0.1:11213" && before != after {
			t.Fatalf("key %s moved from %s to %s though its server stayed", key, before, after)
		}
	}
	for addr, k := range share {
		if k < n/3-n/20 || k > n/3+n/20 {
			t.Errorf("%s owns %d of %d keys; want about a third", addr, k, n)
		}
	}
}

func TestKeysWithOneHashTagShareAServer(t *testing.T) {
	r, err := catalogcache.NewRendezvous("127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213")
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for i := range 100 {
		tag := fmt.Sprint("t", i)
		want := r.Owner("a:{" + tag + "}:1")
		owners[want] = true
		for _, key := range []string{"b:{" + tag + "}:2", "{" + tag + "}", "x{" + tag + "}y{z}"} {
			if got := r.Owner(key); got != want {
				t.Fatalf("%s is on %s, a:{%s}:1 on %s: one tag, one server", key, got, tag, want)
			}
		}
	}
	if len(owners) < 3 {
		t.Errorf("100 tags used %d of 3 servers", len(owners))
	}
}
