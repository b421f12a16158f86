package experiment

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// TestTwoClonesHoldMoreThanOne is a short clones run on the test stack:
// catalog clones under the experiments' small CPU quota, one and then two
// of them behind the gateway, each capacity bisected once with short
// trials. Two clones must hold clearly more than one: the quota, not the
// shared machine, is what a clone runs into. It restarts the clones, so it
// holds the stack alone.
func TestTwoClonesHoldMoreThanOne(t *testing.T) {
	st := stacktest.Require(t)
	st.Exclusive(t)
	var log bytes.Buffer
	s := &Stack{M: st.Manifest, Log: &log}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := newProber(ctx, s, Options{Repeats: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.hold, p.warm, p.precision, p.skipLowLoad = 1500*time.Millisecond, 500*time.Millisecond, 0.15, true
	names, _ := s.CatalogClones()
	if len(names) < 2 {
		t.Fatalf("the test stack has catalog clones %v, want two", names)
	}
	defer s.restoreClones(ctx, 0)
	for _, n := range names[:2] {
		if err := s.restartClone(ctx, n, cloneCPUs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.serveWith(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.meterClones(ctx); err != nil {
		t.Fatal(err)
	}
	configs := []capacityConfig{
		{name: "1 clone", setup: func(ctx context.Context) error { return s.serveWith(ctx, 1) }},
		{name: "2 clones", setup: func(ctx context.Context) error { return s.serveWith(ctx, 2) }},
	}
	stats, err := p.measureCapacities(ctx, configs, 200)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	one, two := stats["1 clone"].Median, stats["2 clones"].Median
	t.Logf("1 clone %.0f/s, 2 clones %.0f/s (%.2f×) at %g cores each", one, two, two/max(one, 1), cloneCPUs)
	if one <= 0 || two < 1.2*one {
		t.Errorf("2 clones hold %.0f/s against one clone's %.0f/s; want clearly more\n%s", two, one, log.String())
	}
	if two > 2.1*one {
		t.Errorf("2 clones hold %.2f× one clone: more than 2× is a measurement bug\n%s", two/one, log.String())
	}
}
