package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Every test of a run happens inside a synctest bubble: time is a fake
// clock that moves only when every goroutine waits, and the server is an
// in-memory RoundTripper whose work is a fake-clock wait. The numbers are
// therefore exact, whatever else the machine is doing.

func constant(rate float64, d time.Duration) *Schedule {
	s, err := NewSchedule([]Stage{{Name: "steady", From: rate, To: rate, Duration: d}})
	if err != nil {
		panic(err)
	}
	return s
}

func get(url string) func() Request {
	return func() Request { return Request{Method: "GET", URL: url} }
}

// fakeServer answers in fake time: each request takes one of its slots
// (nil: unlimited), holds it for the service time handle gives, and gets
// handle's status or error.
type fakeServer struct {
	slots  chan struct{}
	handle func(r *http.Request) (time.Duration, int, error)
}

func serve(d time.Duration, code int) *fakeServer {
	return &fakeServer{handle: func(*http.Request) (time.Duration, int, error) { return d, code, nil }}
}

func (f *fakeServer) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if f.slots != nil {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-f.slots }()
	}
	d, code, err := f.handle(req)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("ok")),
		Header: http.Header{"X-Trace-Id": {"0123456789abcdef0123456789abcdef"}}}, nil
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHistogramPercentilesAgainstKnownInputs(t *testing.T) {
	l := NewLatencies()
	for i := 1; i <= 10000; i++ { // 1 ms .. 10 s, uniform
		l.Record(time.Duration(i) * time.Millisecond)
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Millisecond},
		{0.9, 9000 * time.Millisecond},
		{0.99, 9900 * time.Millisecond},
		{0.999, 9990 * time.Millisecond},
		{1, 10000 * time.Millisecond},
	}
	for _, c := range cases {
		got := l.Quantile(c.q)
		if rel := float64(got-c.want) / float64(c.want); rel < -0.001 || rel > 0.001 {
			t.Errorf("p%v = %v, want %v within 0.1%%", c.q*100, got, c.want)
		}
	}
	if l.Count() != 10000 {
		t.Errorf("Count = %d", l.Count())
	}
	// A single outlier among fast values sits at the max, not the p99.
	o := NewLatencies()
	for range 999 {
		o.Record(2 * time.Millisecond)
	}
	o.Record(3 * time.Second)
	if p99, m := o.Quantile(0.99), o.Max(); p99 > 3*time.Millisecond || m < 2990*time.Millisecond {
		t.Errorf("p99 %v max %v, want ~2ms and ~3s", p99, m)
	}
	s := o.Summary()
	if s.Count != 1000 || s.P50 < 1.99 || s.P50 > 2.01 {
		t.Errorf("Summary = %+v", s)
	}
}

// A server that stalls once, driven with a single worker: the requests that
// were due during the stall leave late. Timed from when they were sent they
// look fast; timed from when they were due they carry the wait, and the
// percentiles show the stall.
func TestLatencyCountsFromTheIntendedSendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		srv := &fakeServer{handle: func(*http.Request) (time.Duration, int, error) {
			if n.Add(1) == 20 {
				return time.Second, 200, nil
			}
			return time.Millisecond, 200, nil
		}}
		res := run(t, Config{
			Schedule: constant(50, 3*time.Second), Names: []string{"get"}, Next: get("http://fake/"),
			MaxWorkers: 1, MaxLag: 5 * time.Second, Transport: srv,
		})
		if res.Aborted != "" || res.Total.Count != 150 {
			t.Fatalf("aborted %q, %d requests", res.Aborted, res.Total.Count)
		}
		// 50 requests were due during the 1 s stall, a third of 150, waiting
		// from ~1 s down to ~0: the slowest tenth waited over half a second.
		if res.Total.P90 < 500 {
			t.Errorf("p90 from the intended time = %.1f ms; the stall does not show", res.Total.P90)
		}
		if res.Total.P50 > 2 {
			t.Errorf("p50 = %.1f ms, want the undisturbed majority (1 ms)", res.Total.P50)
		}
		if res.ServiceTime.P90 > 2 {
			t.Errorf("service time p90 = %.1f ms; only one request was slow once sent", res.ServiceTime.P90)
		}
		if res.Total.Max < 1000 {
			t.Errorf("max = %.1f ms, want the stall", res.Total.Max)
		}
		if res.Generator.SendLagMaxMS < 900 {
			t.Errorf("send lag max %.1f ms: the generator did not notice it sent late", res.Generator.SendLagMaxMS)
		}
		if res.Generator.Workers != 1 || res.Generator.PeakInFlight != 1 {
			t.Errorf("workers %d, peak in flight %d; want 1 and 1", res.Generator.Workers, res.Generator.PeakInFlight)
		}
	})
}

func TestWorkerCapEndsTheRunWithAClearMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := serve(time.Hour, 200)
		res := run(t, Config{
			Schedule: constant(200, 30*time.Second), Names: []string{"get"}, Next: get("http://fake/"),
			MaxWorkers: 20, MaxLag: 300 * time.Millisecond, Timeout: 2 * time.Second, Transport: hang,
		})
		if !strings.Contains(res.Aborted, "worker cap reached") || !strings.Contains(res.Aborted, "max_workers 20") {
			t.Fatalf("Aborted = %q, want the worker cap named", res.Aborted)
		}
		// 20 requests fill the cap by 0.1 s; the next one waits 0.3 s; the
		// ones in flight then time out 2 s after they were sent.
		if res.WallS > 2.5 {
			t.Errorf("the run took %.1f s; it should stop at the cap and end with the last timeout", res.WallS)
		}
		if res.Generator.PeakInFlight != 20 || res.Generator.Sent != 20 {
			t.Errorf("peak in flight %d, sent %d; want the cap, 20", res.Generator.PeakInFlight, res.Generator.Sent)
		}
		if !res.Stages[0].Saturated {
			t.Error("the stopped stage is not marked saturated")
		}
		if res.Errors[KindTimeout] != 20 {
			t.Errorf("errors %v, want 20 timeouts", res.Errors)
		}
	})
}

// The send-lag gate: a generator that cannot produce requests as fast as the
// schedule asks (here each one takes 20 ms to build, at 100/s) stops the run
// and says so, instead of reporting a rate it never sent.
func TestSendLagGateStopsAGeneratorThatFallsBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := run(t, Config{
			Schedule: constant(100, 10*time.Second), Names: []string{"get"},
			Next:   func() Request { time.Sleep(20 * time.Millisecond); return Request{Method: "GET", URL: "http://fake/"} },
			MaxLag: 500 * time.Millisecond, Transport: serve(time.Millisecond, 200),
		})
		if !strings.Contains(res.Aborted, "the generator fell") {
			t.Fatalf("Aborted = %q, want the generator named", res.Aborted)
		}
		if res.Generator.Sent > 60 {
			t.Errorf("sent %d; the gate should stop it within about a second", res.Generator.Sent)
		}
	})
}

// A server with one slot and 20 ms of work serves 50/s; asked for 100/s the
// stage achieves half, is marked saturated and reports no percentiles.
func TestSaturatedStageIsMarked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := serve(20*time.Millisecond, 200)
		srv.slots = make(chan struct{}, 1)
		s, _ := NewSchedule([]Stage{
			{Name: "under", From: 20, To: 20, Duration: 2 * time.Second},
			{Name: "over", From: 100, To: 100, Duration: 2 * time.Second},
		})
		res := run(t, Config{Schedule: s, Names: []string{"get"}, Next: get("http://fake/"), MaxLag: 30 * time.Second, Transport: srv})
		under, over := res.Stages[0], res.Stages[1]
		if under.Saturated || under.AchievedRatio < 0.99 || under.Latency.P50 < 20 || under.Latency.P50 > 21 {
			t.Errorf("20/s against 50/s of capacity: %+v", under)
		}
		if !over.Saturated || over.AchievedRPS < 49 || over.AchievedRPS > 51 {
			t.Errorf("100/s against 50/s of capacity: achieved %.1f/s saturated %v", over.AchievedRPS, over.Saturated)
		}
		if over.Latency.P50 != 0 || over.Latency.P99 != 0 || over.Latency.Count != 200 {
			t.Errorf("a saturated stage printed percentiles of its queue: %+v", over.Latency)
		}
	})
}

// Achieved counts successes: a server that answers every other request 503
// at once holds half the rate, however fast it is.
func TestAchievedCountsSuccessesOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		srv := &fakeServer{handle: func(*http.Request) (time.Duration, int, error) {
			if n.Add(1)%2 == 0 {
				return 0, http.StatusServiceUnavailable, nil
			}
			return time.Millisecond, 200, nil
		}}
		res := run(t, Config{Schedule: constant(100, 4*time.Second), Names: []string{"get"}, Next: get("http://fake/"), Transport: srv})
		st := res.Stages[0]
		if !st.Saturated || st.AchievedRPS < 49 || st.AchievedRPS > 51 {
			t.Errorf("half the requests failed: achieved %.1f/s, saturated %v", st.AchievedRPS, st.Saturated)
		}
		if res.Errors[StatusKind(503)] != 200 || res.Total.Count != 200 {
			t.Errorf("errors %v, %d latencies; want 200 failures kept out of 200 successes", res.Errors, res.Total.Count)
		}
	})
}

// A server that keeps up saturates no stage: not a short stage whose
// schedule holds a fraction of a request (1.5 s at 5/s is 7.5), and not the
// last stage, whose last request is due at the schedule's very end.
func TestAServerThatKeepsUpSaturatesNoStage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := NewSchedule([]Stage{
			{Name: "warm", From: 10, To: 10, Duration: time.Second, Warmup: true},
			{Name: "short", From: 5, To: 5, Duration: 1500 * time.Millisecond},
			{Name: "ramp", From: 20, To: 400, Duration: 2 * time.Second},
			{Name: "last", From: 400, To: 400, Duration: 2 * time.Second},
		})
		res := run(t, Config{Schedule: s, Names: []string{"get"}, Next: get("http://fake/"), Transport: serve(30*time.Millisecond, 200)})
		for _, st := range res.Stages {
			if st.Saturated || st.AchievedRatio < 0.99 || st.AchievedRatio > 1.01 {
				t.Errorf("stage %s against a server that keeps up: ratio %.3f, saturated %v", st.Name, st.AchievedRatio, st.Saturated)
			}
		}
	})
}

func TestErrorsByKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &fakeServer{handle: func(r *http.Request) (time.Duration, int, error) {
			switch r.URL.Path {
			case "/busy":
				return time.Millisecond, http.StatusServiceUnavailable, nil
			case "/slow":
				return 1500 * time.Millisecond, 200, nil
			case "/closed":
				return 0, 0, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			return time.Millisecond, 200, nil
		}}
		paths := []string{"/ok", "/busy", "/slow", "/closed"}
		var i atomic.Int64
		res := run(t, Config{
			Schedule: constant(40, time.Second), Names: []string{"ok", "busy", "slow", "closed"},
			Next: func() Request {
				k := int(i.Add(1)-1) % 4
				return Request{Kind: k, Method: "GET", URL: "http://fake" + paths[k]}
			},
			Timeout: 500 * time.Millisecond, Transport: srv,
		})
		want := map[string]int64{StatusKind(503): 10, KindTimeout: 10, KindRefused: 10}
		for k, n := range want {
			if res.Errors[k] != n {
				t.Errorf("errors[%q] = %d, want %d (all: %v)", k, res.Errors[k], n, res.Errors)
			}
		}
		if len(res.Errors) != len(want) {
			t.Errorf("errors = %v", res.Errors)
		}
		for _, r := range res.Requests {
			if r.Name == "ok" && r.Latency.Errors != 0 || r.Name != "ok" && r.Latency.Errors != 10 {
				t.Errorf("%s: %d errors (%v)", r.Name, r.Latency.Errors, r.Errors)
			}
		}
		if res.ErrorRate != 0.75 {
			t.Errorf("error rate %.3f, want 0.75", res.ErrorRate)
		}
		// Failures stay out of the latency histograms: the refusals took no
		// time and the timeouts half a second; the successes took 1 ms.
		if res.Total.Count != 10 || res.Total.Max > 1.01 {
			t.Errorf("total latency %+v, want the 10 successes of 1 ms alone", res.Total)
		}
		if len(res.Slowest) == 0 || res.Slowest[0].LatencyMS < 500 || res.Slowest[0].Error != KindTimeout {
			t.Errorf("slowest = %+v, want the timeouts first", res.Slowest)
		}
	})
}

func TestGeneratorHoldsItsRateAndReportsItsCPU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen, warm atomic.Int64
		s, _ := NewSchedule([]Stage{
			{Name: "warm", From: 50, To: 50, Duration: time.Second, Warmup: true},
			{Name: "steady", From: 100, To: 100, Duration: 3 * time.Second},
		})
		res := run(t, Config{
			Schedule: s, Names: []string{"get"}, Next: get("http://fake/"), Transport: serve(2*time.Millisecond, 200),
			OnResult: func(r Response) {
				if r.Header.Get("X-Trace-Id") != "" && !r.Failed {
					seen.Add(1)
				}
				if r.Warmup {
					warm.Add(1)
				}
			},
		})
		if res.Total.Count != 300 || res.Generator.Sent != 350 || seen.Load() != 350 || warm.Load() != 50 {
			t.Fatalf("measured %d sent %d seen %d warm-up %d, want 300, 350, 350, 50", res.Total.Count, res.Generator.Sent, seen.Load(), warm.Load())
		}
		if res.Generator.CPUSeconds <= 0 || res.Generator.CPUPerRequestUS <= 0 {
			t.Errorf("generator stats %+v", res.Generator)
		}
		if res.Generator.SendLagMaxMS > 0.001 || res.Generator.SendRateErrorPct > 1 { // the histogram's floor is 1 µs
			t.Errorf("a generator on an idle clock sent late: %+v", res.Generator)
		}
		if len(res.Seconds) < 4 || res.Seconds[2].TargetRPS < 99.9 || res.Seconds[2].TargetRPS > 100.1 || res.Seconds[2].Sent != 100 {
			t.Errorf("seconds %+v", res.Seconds)
		}
		if res.Slowest[0].TraceID == "" {
			t.Error("slowest requests lack the trace id")
		}
	})
}

// The progress line says the run is warming up rather than printing the
// percentiles of an empty histogram ("p50 0µs").
func TestProgressDuringWarmUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := NewSchedule([]Stage{
			{Name: "warm", From: 50, To: 50, Duration: 2 * time.Second, Warmup: true},
			{Name: "steady", From: 50, To: 50, Duration: 2 * time.Second},
		})
		var out strings.Builder
		run(t, Config{Schedule: s, Names: []string{"get"}, Next: get("http://fake/"), Transport: serve(3*time.Millisecond, 200), Progress: &out})
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) < 3 {
			t.Fatalf("progress:\n%s", out.String())
		}
		for _, l := range lines[:2] {
			if !strings.Contains(l, "warming up") || strings.Contains(l, "p50 0µs") {
				t.Errorf("warm-up line %q", l)
			}
		}
		if !strings.Contains(lines[len(lines)-1], "p50 3.0ms") {
			t.Errorf("last line %q, want the measured p50", lines[len(lines)-1])
		}
	})
}
