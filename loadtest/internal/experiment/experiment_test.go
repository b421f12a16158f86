package experiment

import (
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/loadtest/internal/engine"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

func TestEveryExperimentLoadIsAValidScenario(t *testing.T) {
	for _, e := range All() {
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
