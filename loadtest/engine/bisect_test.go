package engine

import (
	"errors"
	"testing"
)

func TestBisectFindsTheHighestRateHeld(t *testing.T) {
	for _, capacity := range []float64{37, 480, 1234, 20000} {
		var trials []float64
		got, err := Bisect(200, 2, 0.05, func(rate float64) (bool, error) {
			trials = append(trials, rate)
			return rate <= capacity, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got > capacity || got < 0.95*capacity {
			t.Errorf("capacity %.0f: found %.0f after %v", capacity, got, trials)
		}
		if len(trials) > 12 {
			t.Errorf("capacity %.0f: %d trials", capacity, len(trials))
		}
	}
}

func TestBisectReportsNothingHeldAndStopsOnError(t *testing.T) {
	got, err := Bisect(200, 2, 0.05, func(float64) (bool, error) { return false, nil })
	if err != nil || got != 0 {
		t.Fatalf("a target that holds nothing: %v, %v; want 0", got, err)
	}
	boom := errors.New("stack gone")
	calls := 0
	_, err = Bisect(200, 2, 0.05, func(float64) (bool, error) { calls++; return true, boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("error %v after %d trials; want the trial's error at once", err, calls)
	}
}
