package main

import (
	"io"
	"strings"
	"testing"
)

// searches makes a configuration whose searches found caps, each missing
// the next rate up with its process using missedCores of a 0.1 quota.
func searches(name string, missedCores float64, caps ...float64) *config {
	c := &config{name: name, pid: 1, quota: 0.1}
	for _, capacity := range caps {
		c.runs = append(c.runs, search{
			capacity: capacity,
			at:       trial{rate: capacity, held: true, cores: 0.095},
			missed:   trial{rate: capacity * 1.05, why: "achieved 90 % of the rate", cores: missedCores},
		})
	}
	return c
}

func TestReportPassesRatiosOfMedianCapacities(t *testing.T) {
	configs := []*config{
		searches("list cached", 0.1, 700, 800, 760),
		searches("list uncached", 0.1, 200, 190, 250),
		searches("product cached", 0.1, 2700, 2600, 2800),
		searches("healthz", 0.1, 3200, 3300, 3000),
	}
	var out strings.Builder
	if misses := report(&out, configs, 0, 1); len(misses) != 0 {
		t.Fatalf("3.8× and 0.84× were reported as misses: %v\n%s", misses, out.String())
	}
	if !strings.Contains(out.String(), "3.80× the capacity (searches paired 2.80–4.21×)") {
		t.Errorf("the list ratio is not the ratio of medians with its pairings:\n%s", out.String())
	}
}

func TestReportFailsARatioBelowItsTarget(t *testing.T) {
	configs := []*config{searches("list cached", 0.1, 500), searches("list uncached", 0.1, 200)}
	misses := report(io.Discard, configs, 0, 1)
	if len(misses) != 1 || !strings.Contains(misses[0], "2.50×") {
		t.Fatalf("misses %v, want the list ratio 2.50× below 3×", misses)
	}
}

func TestReportFailsACapacityTheProcessDidNotSetItself(t *testing.T) {
	// At the rate it missed the process used 40 % of its quota: the
	// generator or Postgres stopped it, so its "capacity" is not its own.
	configs := []*config{searches("list cached", 0.04, 800), searches("list uncached", 0.1, 200)}
	misses := report(io.Discard, configs, 0, 1)
	if len(misses) != 1 || !strings.Contains(misses[0], "the limit was not the process") {
		t.Fatalf("misses %v, want the list cached search refused", misses)
	}
}
