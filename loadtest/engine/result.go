package engine

import "time"

// Result is what one run measured. It is plain data: the JSON report
// embeds it unchanged. Latencies are milliseconds from the intended send
// time; rates are per second.
type Result struct {
	Started   time.Time `json:"started"`
	WallS     float64   `json:"wall_s"`
	Aborted   string    `json:"aborted,omitempty"` // why the run stopped early; empty when it ran to the end
	Scheduled uint64    `json:"scheduled"`         // requests the schedule asked for (warm-up included)

	Total Summary `json:"total"` // measured requests: warm-up excluded; latencies of successes only
	// ServiceTime is the same requests timed from when they were actually
	// sent: the gap to Total is the queueing a closed-loop tool would hide
	// (coordinated omission).
	ServiceTime Summary            `json:"service_time"`
	ErrorRate   float64            `json:"error_rate"`
	Errors      map[string]int64   `json:"errors"` // kind -> count
	Requests    []RequestResult    `json:"requests"`
	Phases      []PhaseResult      `json:"phases"` // follow-up measurements (order accepted -> final status)
	Stages      []StageResult      `json:"stages"`
	Seconds     []Second           `json:"seconds"`
	Spectrum    []Point            `json:"spectrum"`
	Slowest     []SlowRequest      `json:"slowest"`
	Generator   GeneratorStats     `json:"generator"`
	StatusCode  map[string]int64   `json:"status_codes"`
	Extra       map[string]float64 `json:"extra,omitempty"`
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
}

// RequestResult is one named request of the mix.
type RequestResult struct {
	Name    string           `json:"name"`
	Latency Summary          `json:"latency"`
	Errors  map[string]int64 `json:"errors"`
}

// PhaseResult is a follow-up measurement, such as an order's time from
// accepted to its final status.
type PhaseResult struct {
	Name    string           `json:"name"`
	Latency Summary          `json:"latency"`
	Errors  map[string]int64 `json:"errors"`
}

// StageResult is one stage of the schedule. A stage whose achieved rate is
// below 99 % of its target is saturated: its latencies describe a queue, not
// the service, and reports say so instead of printing them as a result.
type StageResult struct {
	Name          string           `json:"name"`
	Warmup        bool             `json:"warmup"`
	StartS        float64          `json:"start_s"`
	DurationS     float64          `json:"duration_s"`
	TargetRPS     float64          `json:"target_rps"`
	SentRPS       float64          `json:"sent_rps"`
	AchievedRPS   float64          `json:"achieved_rps"` // successes completed while the stage ran, per second
	AchievedRatio float64          `json:"achieved_ratio"`
	Saturated     bool             `json:"saturated"`
	Latency       Summary          `json:"latency"`
	Errors        map[string]int64 `json:"errors"`
}

// dropPercentiles leaves a saturated stage its counts and its maximum: its
// percentiles would describe the queue the generator built, not the server.
func (s *StageResult) dropPercentiles() {
	s.Latency = Summary{Count: s.Latency.Count, Errors: s.Latency.Errors, Max: s.Latency.Max}
}

// Second is one second of the run: requests by their intended send time
// (latency), sent by actual send time, successes by completion time.
type Second struct {
	T         int     `json:"t"`
	TargetRPS float64 `json:"target_rps"`
	Sent      int64   `json:"sent"`
	OK        int64   `json:"ok"`
	Errors    int64   `json:"errors"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
}

// Point is one point of the percentile spectrum.
type Point struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

// SlowRequest is one of the N slowest requests, with the trace id the
// gateway answered so its trace can be looked up.
type SlowRequest struct {
	Name       string  `json:"name"`
	Method     string  `json:"method"`
	URL        string  `json:"url"`
	Status     int     `json:"status"`
	Error      string  `json:"error,omitempty"`
	LatencyMS  float64 `json:"latency_ms"`
	IntendedAt float64 `json:"intended_at_s"`
	TraceID    string  `json:"trace_id,omitempty"`
}

// GeneratorStats shows whether the generator itself kept up: its own CPU,
// how late it sent requests against the schedule, and how far its per-second
// send rate strayed from the target.
type GeneratorStats struct {
	Cores            int     `json:"cores"`
	CPUSeconds       float64 `json:"cpu_s"`
	CPUShare         float64 `json:"cpu_share"` // of the whole machine (all cores)
	CPUPerRequestUS  float64 `json:"cpu_per_request_us"`
	MaxWorkers       uint64  `json:"max_workers"`
	Workers          uint64  `json:"workers"` // goroutines the pacer started (at most MaxWorkers)
	PeakInFlight     int64   `json:"peak_in_flight"`
	SendLagP50MS     float64 `json:"send_lag_p50_ms"`
	SendLagP99MS     float64 `json:"send_lag_p99_ms"`
	SendLagMaxMS     float64 `json:"send_lag_max_ms"`
	SendRateErrorPct float64 `json:"send_rate_error_pct"` // worst 5-second window: |sent - target| / target
	Sent             uint64  `json:"sent"`
}
