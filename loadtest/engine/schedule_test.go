package engine

import (
	"math"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func mustSchedule(t *testing.T, stages ...Stage) *Schedule {
	t.Helper()
	s, err := NewSchedule(stages)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sendTimes plays a pacer the way vegeta's attack loop does, with a perfect
// clock: ask how long to wait, wait exactly that, send, repeat.
func sendTimes(p vegeta.Pacer, limit time.Duration) []time.Duration {
	var out []time.Duration
	var now time.Duration
	for hits := uint64(0); ; hits++ {
		wait, stop := p.Pace(now, hits)
		if stop || now > limit {
			return out
		}
		now += wait
		out = append(out, now)
	}
}

func TestScheduleConstantMatchesVegetaConstantPacer(t *testing.T) {
	s := mustSchedule(t, Stage{From: 250, To: 250, Duration: 4 * time.Second})
	want := sendTimes(vegeta.ConstantPacer{Freq: 250, Per: time.Second}, 4*time.Second-time.Nanosecond)
	got := sendTimes(s, time.Hour)
	if len(got) != 1000 || uint64(len(got)) != s.Total() {
		t.Fatalf("schedule sent %d hits, Total %d, want 1000", len(got), s.Total())
	}
	if len(want) != len(got) {
		t.Fatalf("vegeta sent %d, schedule %d", len(want), len(got))
	}
	for i := range got {
		if d := got[i] - want[i]; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("hit %d at %v, vegeta's ConstantPacer sends it at %v", i, got[i], want[i])
		}
		if due := s.Due(uint64(i)); due != got[i] {
			t.Fatalf("Due(%d) = %v, Pace sent it at %v", i, due, got[i])
		}
	}
}

func TestScheduleRampMatchesVegetaLinearPacer(t *testing.T) {
	// 10/s rising by 40/s² for 5 s: 10 -> 210 per second, 550 hits.
	s := mustSchedule(t, Stage{From: 10, To: 210, Duration: 5 * time.Second})
	if s.Total() != 550 {
		t.Fatalf("Total = %d, want 550", s.Total())
	}
	lp := vegeta.LinearPacer{StartAt: vegeta.ConstantPacer{Freq: 10, Per: time.Second}, Slope: 40}
	want := sendTimes(lp, 5*time.Second)
	got := sendTimes(s, time.Hour)
	// vegeta's LinearPacer sends its first hit at t=0 and solves the rest
	// numerically; the two agree to within a fraction of one interval.
	for i := 1; i < len(got) && i < len(want); i++ {
		interval := time.Duration(float64(time.Second) / s.Rate(min(got[i], 5*time.Second-time.Nanosecond)))
		if d := got[i] - want[i]; d.Abs() > interval {
			t.Fatalf("hit %d at %v, vegeta's LinearPacer at %v (interval %v)", i, got[i], want[i], interval)
		}
	}
	// The ramp's count by time follows the integral of the rate.
	for _, at := range []time.Duration{time.Second, 2500 * time.Millisecond, 5 * time.Second} {
		x := at.Seconds()
		wantHits := 10*x + 20*x*x
		n := 0
		for _, g := range got {
			if g <= at {
				n++
			}
		}
		if math.Abs(float64(n)-wantHits) > 1 {
			t.Errorf("%d hits by %v, want %.1f", n, at, wantHits)
		}
	}
}

func TestScheduleStepsAndBoundaries(t *testing.T) {
	s := mustSchedule(t,
		Stage{Name: "warm", From: 5, To: 5, Duration: 2 * time.Second, Warmup: true},
		Stage{Name: "a", From: 50, To: 50, Duration: 2 * time.Second},
		Stage{Name: "pause", From: 0, To: 0, Duration: time.Second},
		Stage{Name: "b", From: 250, To: 250, Duration: 2 * time.Second},
	)
	if s.Total() != 10+100+500 || s.Duration() != 7*time.Second {
		t.Fatalf("Total %d Duration %v", s.Total(), s.Duration())
	}
	cases := []struct {
		hit   uint64
		stage int
		due   time.Duration
	}{
		{0, 0, 200 * time.Millisecond},
		{9, 0, 2 * time.Second}, // due on the boundary: it belongs to the stage it completes
		{10, 1, 2020 * time.Millisecond},
		{109, 1, 4 * time.Second},
		{110, 3, 5004 * time.Millisecond}, // the pause holds no hits
		{609, 3, 7 * time.Second},
	}
	for _, c := range cases {
		if got := s.StageOf(c.hit); got != c.stage {
			t.Errorf("StageOf(%d) = %d, want %d", c.hit, got, c.stage)
		}
		if got := s.Due(c.hit); (got - c.due).Abs() > time.Microsecond {
			t.Errorf("Due(%d) = %v, want %v", c.hit, got, c.due)
		}
	}
	for i, want := range []uint64{0, 10, 110, 110, 610} {
		if got := s.FirstHit(i); got != want {
			t.Errorf("FirstHit(%d) = %d, want %d", i, got, want)
		}
	}
	if w, stop := s.Pace(3*time.Second, 50); stop || w != 0 {
		t.Errorf("behind schedule: Pace = %v, %v; want send at once", w, stop)
	}
	if w, _ := s.Pace(2*time.Second, 10); w != 20*time.Millisecond {
		t.Errorf("Pace at a stage start = %v, want 20ms", w)
	}
	if _, stop := s.Pace(8*time.Second, 610); !stop {
		t.Error("Pace did not stop after the last hit")
	}
	if r := s.Rate(4500 * time.Millisecond); r != 0 {
		t.Errorf("Rate in the pause = %v", r)
	}
}

func TestScheduleRejectsBadStages(t *testing.T) {
	for _, st := range []Stage{{From: 1, To: 1}, {From: -1, To: 2, Duration: time.Second}} {
		if _, err := NewSchedule([]Stage{st}); err == nil {
			t.Errorf("NewSchedule(%+v) accepted", st)
		}
	}
	if _, err := NewSchedule(nil); err == nil {
		t.Error("an empty schedule was accepted")
	}
}
