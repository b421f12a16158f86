package report

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// sampleMetric is the gauge infra/telemetry registers in every process.
const sampleMetric = "otel_trace_sample_ratio"

// ReadSampling reads the ratio from base's /metrics.
func ReadSampling(ctx context.Context, base string) Sampling {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := strings.TrimRight(base, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Sampling{Source: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Sampling{Source: "no answer from " + url}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sampling{Source: url + " answered " + resp.Status}
	}
	return parseSampling(bufio.NewScanner(resp.Body), url)
}

func parseSampling(sc *bufio.Scanner, url string) Sampling {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || name != sampleMetric {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return Sampling{Source: fmt.Sprintf("%s: %s %q is not a number", url, sampleMetric, value)}
		}
		return Sampling{Ratio: v, Known: true, Source: sampleMetric + " at " + url}
	}
	return Sampling{Source: url + " has no " + sampleMetric + " (a stack older than the gauge)"}
}
