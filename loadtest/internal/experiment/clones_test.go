package experiment

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// TestTwoClonesHoldMoreThanOne is a short clones run on the test stack: the
// experiment itself, with one and two catalog clones under its CPU quota,
// one bisection each on shortened trials. Two clones must hold clearly more
// than one (the quota, not the shared machine, is what a clone runs into),
// and not more than twice as much, which no real pair of clones does. Both
// capacities must be the clones' own, their CPU at capacity near their
// quota: else something else stopped the load and the ratio is not theirs.
// It restarts the clones, so it holds the stack alone, and `make test` runs
// it after every other package so that it has the machine alone too.
//
// "More than twice", the physical bound, is the full experiment's verdict
// (`loadtest experiment clones`: three blocks of full-length trials), not
// this short run's: here it is logged. Over eight CI runs on 4 December a
// lone clone's half-length bisections read 8 % less a clone than a pair's
// (342–452/s against 352–462/s a clone, its pages 0.25–0.26 ms of CPU
// against 0.23) and moved by up to 39 % between the two blocks of one
// run, so three of the eight read the pair beyond 2× in both blocks
// (2.12–2.19×, 2.20–2.59×, 2.27–2.55×) while the full experiment passed.
func TestTwoClonesHoldMoreThanOne(t *testing.T) {
	st := stacktest.Require(t)
	st.Exclusive(t)
	var log bytes.Buffer
	s := &Stack{M: st.Manifest, Log: &log}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	rows, err := runClones(ctx, s, Options{Repeats: 2, MaxClones: 2, DurationScale: 0.5})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 1 clone and 2 clones\n%s", len(rows), log.String())
	}
	one, two := rows[0].Capacity, rows[1].Capacity
	t.Logf("1 clone %.0f/s, 2 clones %.0f/s (%.2f×) at %g cores each\n%s", one, two, two/max(one, 1), cloneCPUs, clonesVerdict(rows))
	fails := quotaUse(rows)
	if one <= 0 || two < 1.3*one {
		fails = append(fails, fmt.Sprintf("2 clones hold %.0f/s against one clone's %.0f/s; want clearly more", two, one))
	}
	if beyond(rows[0], rows[1], 2) {
		t.Logf("2 clones held %.2f× one clone, at least %.2f× in every block: beyond 2×, which the full experiment fails and this short run only reports",
			two/one, leastRatio(rows[0], rows[1]))
	}
	if len(fails) > 0 {
		t.Errorf("%s\n%s", strings.Join(fails, "\n"), log.String())
	}
}
