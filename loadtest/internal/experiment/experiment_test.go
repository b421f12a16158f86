package experiment

import (
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/engine"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

func TestEveryExperimentLoadIsAValidScenario(t *testing.T) {
	for _, e := range All() {
		if e.Custom != nil {
			if e.Question == "" || e.Concept == "" || e.Verdict == nil {
				t.Errorf("%s is incomplete", e.Name)
			}
			continue
		}
		sc, err := scenario.Parse(e.Name+".yaml", []byte(e.Load))
		if err != nil {
			t.Errorf("%s: %v", e.Name, err)
			continue
		}
		if _, err := sc.Schedule(); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if len(e.Configs) == 0 || e.Question == "" || e.Concept == "" {
			t.Errorf("%s is incomplete", e.Name)
		}
	}
}

func TestRowsAndRatios(t *testing.T) {
	res := func(p50 float64, caps ...float64) *engine.Result {
		r := &engine.Result{Total: engine.Summary{P50: p50}}
		r.Stages = append(r.Stages, engine.StageResult{Warmup: true, TargetRPS: 1000, AchievedRPS: 1000, DurationS: 1})
		for _, c := range caps {
			r.Stages = append(r.Stages, engine.StageResult{TargetRPS: 100, AchievedRPS: c, DurationS: 5, Saturated: c < 99})
		}
		return r
	}
	one := rowOf("one", res(4, 100, 100, 60))
	two := rowOf("two", res(2, 100, 100, 100))
	if one.Capacity != 100 || one.Saturated != 1 || one.TargetRPS != 100 || one.AchievedRPS < 86 || one.AchievedRPS > 87 {
		t.Errorf("row %+v", one)
	}
	if got := ratio(P50, []Row{one, two}); got != "p50: two / one = 0.50×" {
		t.Errorf("ratio = %q", got)
	}
	if got := ratio(Capacity, []Row{one, two, {Config: "three", Skipped: "no"}}); !strings.Contains(got, "two / one = 1.00×") || strings.Contains(got, "three") {
		t.Errorf("ratio = %q", got)
	}
}

func TestReadYourWritesRows(t *testing.T) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	samples := []rywSample{
		{row: rywRows[0], took: ms(2), from: "primary"},
		{row: rywRows[0], took: ms(4), from: "primary"},
		{row: rywRows[1], took: ms(1), stale: true, from: "replica"},
		{row: rywRows[1], took: ms(3), from: "replica"},
		{row: rywRows[1], err: "http 503"},
		{row: rywRows[2], took: ms(2), from: "primary"},
		{row: rywRows[3], took: ms(2), from: "primary"},
		{row: rywRows[4], took: ms(1), from: "cache"},
	}
	rows := rywRowsOf(samples)
	if len(rows) != len(rywRows) {
		t.Fatalf("%d rows, want %d", len(rows), len(rywRows))
	}
	anon := rows[1]
	if anon.Reads != 2 || anon.StaleReads != 1 || anon.StalePct() != 50 || anon.Errors != 1 || anon.ServedFrom["replica"] != 2 {
		t.Errorf("anonymous row %+v: want 2 reads, 1 stale (50 %%), 1 error, both from the replica", anon)
	}
	if rows[0].P50 != 2 || rows[0].P99 != 4 || rows[0].StaleReads != 0 {
		t.Errorf("token row p50 %v p99 %v stale %d, want 2, 4, 0", rows[0].P50, rows[0].P99, rows[0].StaleReads)
	}
	v := rywVerdict(rows)
	if !strings.Contains(v, "with the token: 0 of 3 reads stale (as expected") || !strings.Contains(v, "anonymous, lag below the bound: 50.0 % stale (as expected") {
		t.Errorf("verdict:\n%s", v)
	}
	rows[2].StaleReads = 1
	if v := rywVerdict(rows); !strings.Contains(v, "with the token: 1 of 3 reads stale (NOT as expected") {
		t.Errorf("a stale token read must show in the verdict:\n%s", v)
	}
}
