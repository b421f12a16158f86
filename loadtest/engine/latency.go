package engine

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms count microseconds from 1 µs to 5 minutes.
const (
	histMin = 1
	histMax = int64(5 * time.Minute / time.Microsecond)
)

// Latencies is an HdrHistogram of durations.
type Latencies struct{ h *hdrhistogram.Histogram }

// NewLatencies keeps 3 significant digits: every percentile is within 0.1 %
// of the true value.
func NewLatencies() *Latencies { return &Latencies{hdrhistogram.New(histMin, histMax, 3)} }

// newCoarse keeps 2 significant digits (1 %), for the per-second series.
func newCoarse() *Latencies { return &Latencies{hdrhistogram.New(histMin, histMax, 2)} }

// Record adds one duration; values past the range are clamped to it.
func (l *Latencies) Record(d time.Duration) {
	us := min(max(d.Microseconds(), histMin), histMax)
	_ = l.h.RecordValue(us) // cannot fail: clamped to the range
}

// Count is the number of recorded values.
func (l *Latencies) Count() int64 { return l.h.TotalCount() }

// Quantile returns the latency at q (0 < q <= 1).
func (l *Latencies) Quantile(q float64) time.Duration {
	return time.Duration(l.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max is the largest recorded value.
func (l *Latencies) Max() time.Duration { return time.Duration(l.h.Max()) * time.Microsecond }

// Mean is the mean of the recorded values.
func (l *Latencies) Mean() time.Duration {
	return time.Duration(l.h.Mean() * float64(time.Microsecond))
}

// Summary condenses the histogram into the numbers a report prints, in ms.
func (l *Latencies) Summary() Summary {
	if l.Count() == 0 {
		return Summary{}
	}
	return Summary{
		Count: l.Count(),
		P50:   ms(l.Quantile(0.50)),
		P90:   ms(l.Quantile(0.90)),
		P95:   ms(l.Quantile(0.95)),
		P99:   ms(l.Quantile(0.99)),
		P999:  ms(l.Quantile(0.999)),
		Max:   ms(l.Max()),
		Mean:  ms(l.Mean()),
	}
}

// SpectrumQuantiles are the points of the percentile spectrum plot: evenly
// spaced in "number of nines".
var SpectrumQuantiles = []float64{0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

// Spectrum returns latency at each of SpectrumQuantiles.
func (l *Latencies) Spectrum() []Point {
	if l.Count() == 0 {
		return nil
	}
	out := make([]Point, 0, len(SpectrumQuantiles))
	for _, q := range SpectrumQuantiles {
		v := l.Quantile(q)
		if q == 1 {
			v = l.Max()
		}
		out = append(out, Point{Percentile: q * 100, MS: ms(v)})
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
