package orders

import (
	"fmt"
	"testing"
)

func TestShardOfIsStable(t *testing.T) {
	// Pinned values: changing the hash moves every customer to another
	// shard and orphans their orders. Never "fix" this test by updating
	// the expectations; migrate the data instead.
	for customer, want := range map[string]int{
		"alice": 7, "bob": 4, "customer-1": 7, "decline-7": 1, "": 5,
	} {
		if got := ShardOf(customer, 8); got != want {
			t.Errorf("ShardOf(%q) = %d, want %d", customer, got, want)
		}
	}
}

func TestShardOfIsBalanced(t *testing.T) {
	const n, shards = 100_000, 8
	counts := make([]int, shards)
	for i := range n {
		counts[ShardOf(fmt.Sprintf("customer-%d", i), shards)]++
	}
	expected := float64(n) / shards
	chi2 := 0.0
	lo, hi := counts[0], counts[0]
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
		lo, hi = min(lo, c), max(hi, c)
	}
	// 7 degrees of freedom: the 99.9th percentile of chi-square is 24.32.
	if chi2 > 24.32 {
		t.Errorf("chi-square %.1f over 8 shards (counts %v): not uniform", chi2, counts)
	}
	if ratio := float64(hi) / float64(lo); ratio > 1.05 {
		t.Errorf("max/min shard ratio %.3f (counts %v), want <= 1.05", ratio, counts)
	}
}

func TestIDRoundTrip(t *testing.T) {
	for shard := range 8 {
		id, err := NewID(shard)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseID(id.String(), 8)
		if err != nil {
			t.Fatalf("ParseID(%q): %v", id, err)
		}
		if back != id {
			t.Fatalf("round trip %q -> %+v, want %+v", id, back, id)
		}
		if back.Shard != shard {
			t.Fatalf("shard %d decoded as %d", shard, back.Shard)
		}
	}
}

func TestParseIDRejects(t *testing.T) {
	good, _ := NewID(3)
	tail := good.UUID.String()
	for _, s := range []string{
		"", "3", "3-", "-" + tail, "8-" + tail, "-1-" + tail, "03-" + tail, "x-" + tail,
		"3-not-a-uuid", "3-" + tail + "0", "3-{" + tail + "}",
	} {
		if _, err := ParseID(s, 8); err == nil {
			t.Errorf("ParseID(%q) accepted", s)
		}
	}
}
