package catalogcache_test

import (
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
