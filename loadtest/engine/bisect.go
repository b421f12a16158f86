package engine

import "math"

// Bisect finds the highest rate a target holds, where held runs one trial
// at a rate: from start it multiplies the rate by step until a trial
// misses, halves it until one holds, then bisects until the bracket is
// narrower than precision (0.05: known within 5 %). It returns the highest
// rate held, 0 when none did, after at most 12 trials. Rates are whole
// requests per second; it gives up below 5/s.
//
// Written here rather than taken from a library: what a capacity search
// needs (integer rates, a trial budget, a bracket that only the trials
// themselves can move) is a dozen lines, and every capacity in the project
// (the clone experiments, catalogbench) is found by this one.
func Bisect(start, step, precision float64, held func(rate float64) (bool, error)) (float64, error) {
	const maxTrials, floor = 12, 5
	lo, hi := 0.0, math.Inf(1)
	rate := math.Max(1, math.Round(start))
	for range maxTrials {
		ok, err := held(rate)
		if err != nil {
			return lo, err
		}
		if ok {
			lo = rate
		} else {
			hi = rate
		}
		switch {
		case lo > 0 && !math.IsInf(hi, 1) && hi/lo-1 < precision:
			return lo, nil
		case math.IsInf(hi, 1):
			rate = lo * step
		case lo == 0:
			if rate = hi / 2; rate < floor {
				return lo, nil
			}
		default:
			rate = (lo + hi) / 2
		}
		if rate = math.Max(1, math.Round(rate)); rate == lo || rate == hi {
			return lo, nil
		}
	}
	return lo, nil
}
