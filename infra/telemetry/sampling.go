package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/scrape"
)

// Sampling is the trace sampling ratio the stack ran with: the share of
// requests whose trace was recorded and exported. The root of a trace (the
// gateway, or a catalog loaded directly) decides, and every hop follows, so
// a run at 1.0 pays for a span per hop on every request. Lower it with
// OTEL_TRACES_SAMPLER_ARG=0.1 when the stack starts.
type Sampling struct {
	Ratio  float64 `json:"ratio"`
	Known  bool    `json:"known"`
	Source string  `json:"source"` // where it was read, or why it is unknown
}

// String is how the reports print it.
func (s Sampling) String() string {
	if !s.Known {
		return "unknown (" + s.Source + ")"
	}
	return fmt.Sprintf("%g (%s)", s.Ratio, s.Source)
}

// sampleMetric is the gauge Setup registers in every process.
const sampleMetric = "otel_trace_sample_ratio"

// ReadSampling reads the ratio from base's /metrics.
func ReadSampling(ctx context.Context, base string) Sampling {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	families, err := scrape.Get(ctx, http.DefaultClient, base)
	if err != nil {
		return Sampling{Source: err.Error()}
	}
	url := strings.TrimRight(base, "/") + "/metrics"
	ratio, ok := families.Sum(sampleMetric, nil)
	if !ok {
		return Sampling{Source: url + " has no " + sampleMetric + " (a stack older than the gauge)"}
	}
	return Sampling{Ratio: ratio, Known: true, Source: sampleMetric + " at " + url}
}
