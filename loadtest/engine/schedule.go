// Package engine is the one open-model load generator of every benchmark
// and experiment: a pacer hands each request to a worker when the Schedule
// says it is due, whatever the server does, and every latency is measured
// from that moment (its intended send time), so a stalled server or a
// generator that fell behind shows in the percentiles instead of hiding (no
// coordinated omission). Latencies go into HdrHistograms; failures are
// counted apart; a stage the server could not hold is marked saturated.
package engine

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Stage is one part of a schedule: a rate that holds (From == To) or ramps
// linearly from From to To requests per second over Duration.
type Stage struct {
	Name     string
	From, To float64 // requests per second
	Duration time.Duration
	Warmup   bool // results are measured but not part of the totals
}

// Schedule is a piecewise-linear arrival rate. It is a vegeta.Pacer, and it
// can also answer the inverse question the Pacer interface does not: when
// was hit n due? That is what makes intended-time latency exact.
type Schedule struct {
	stages []Stage
	start  []time.Duration // offset of each stage
	before []float64       // hits due before each stage
	total  uint64
	length time.Duration
}

var _ vegeta.Pacer = (*Schedule)(nil)

// NewSchedule checks the stages and builds the schedule.
func NewSchedule(stages []Stage) (*Schedule, error) {
	if len(stages) == 0 {
		return nil, errors.New("a schedule needs at least one stage")
	}
	s := &Schedule{stages: stages}
	var hits float64
	var at time.Duration
	for i, st := range stages {
		if st.Duration <= 0 {
			return nil, fmt.Errorf("stage %d: duration must be positive", i+1)
		}
		if st.From < 0 || st.To < 0 || math.IsNaN(st.From) || math.IsNaN(st.To) {
			return nil, fmt.Errorf("stage %d: rates must be >= 0", i+1)
		}
		s.start = append(s.start, at)
		s.before = append(s.before, hits)
		hits += (st.From + st.To) / 2 * st.Duration.Seconds()
		at += st.Duration
	}
	s.length = at
	// Rounded down, but a hair of floating point error (199.99999) must not
	// lose the last hit.
	s.total = uint64(math.Floor(hits + 1e-6))
	return s, nil
}

// Stages returns the stages.
func (s *Schedule) Stages() []Stage { return s.stages }

// StageStart is the offset at which stage i begins.
func (s *Schedule) StageStart(i int) time.Duration { return s.start[i] }

// Duration is the whole schedule's length.
func (s *Schedule) Duration() time.Duration { return s.length }

// Total is the number of hits the schedule sends.
func (s *Schedule) Total() uint64 { return s.total }

// Hits is the number of hits due by elapsed (fractional).
func (s *Schedule) Hits(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	if elapsed >= s.length {
		return s.before[len(s.before)-1] + s.stageHits(len(s.stages)-1, s.stages[len(s.stages)-1].Duration)
	}
	i := s.StageAt(elapsed)
	return s.before[i] + s.stageHits(i, elapsed-s.start[i])
}

// stageHits is the number of hits due tau into stage i.
func (s *Schedule) stageHits(i int, tau time.Duration) float64 {
	st := s.stages[i]
	x := tau.Seconds()
	slope := (st.To - st.From) / st.Duration.Seconds()
	return st.From*x + slope*x*x/2
}

// StageAt returns the index of the stage running at elapsed.
func (s *Schedule) StageAt(elapsed time.Duration) int {
	i := sort.Search(len(s.start), func(i int) bool { return s.start[i] > elapsed }) - 1
	return max(i, 0)
}

// StageOf returns the stage hit n (0-based) belongs to. A hit due exactly
// at a boundary belongs to the stage it completes.
func (s *Schedule) StageOf(n uint64) int {
	want := float64(n+1) - 1e-9
	i := sort.Search(len(s.before), func(i int) bool { return s.before[i] >= want }) - 1
	return max(i, 0)
}

// FirstHit is the number of the first hit of stage i (Total() past the end).
func (s *Schedule) FirstHit(i int) uint64 {
	if i >= len(s.stages) {
		return s.total
	}
	return uint64(sort.Search(int(s.total), func(n int) bool { return s.StageOf(uint64(n)) >= i }))
}

// Due is the intended send time of hit n (0-based), as an offset from the
// start: the moment the cumulative arrival count reaches n+1. It matches
// vegeta's ConstantPacer, which sends hit n at (n+1)/rate.
func (s *Schedule) Due(n uint64) time.Duration {
	want := float64(n + 1)
	i := s.StageOf(n)
	h := want - s.before[i]
	st := s.stages[i]
	d := st.Duration.Seconds()
	slope := (st.To - st.From) / d
	var x float64
	switch {
	case math.Abs(slope) < 1e-12:
		if st.From == 0 {
			x = d
		} else {
			x = h / st.From
		}
	default:
		// slope/2 x² + From x - h = 0, the root within the stage.
		disc := st.From*st.From + 2*slope*h
		if disc < 0 {
			disc = 0
		}
		x = (-st.From + math.Sqrt(disc)) / slope
	}
	x = math.Min(math.Max(x, 0), d)
	return s.start[i] + time.Duration(x*float64(time.Second))
}

// Pace implements vegeta.Pacer: wait until hit number hits is due, and stop
// once every hit has been sent.
func (s *Schedule) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= s.total {
		return 0, true
	}
	if due := s.Due(hits); due > elapsed {
		return due - elapsed, false
	}
	return 0, false // behind: send at once
}

// Rate implements vegeta.Pacer: the instantaneous rate at elapsed.
func (s *Schedule) Rate(elapsed time.Duration) float64 {
	if elapsed < 0 || elapsed >= s.length {
		return 0
	}
	i := s.StageAt(elapsed)
	st := s.stages[i]
	f := (elapsed - s.start[i]).Seconds() / st.Duration.Seconds()
	return st.From + (st.To-st.From)*f
}
