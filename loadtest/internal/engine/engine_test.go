package engine

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
// were due during the stall leave late. Timed from when they were sent
// (vegeta's stamp) they look fast; timed from when they were due they carry
// the wait, and the percentiles show the stall.
func TestLatencyCountsFromTheIntendedSendTime(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 20 {
			time.Sleep(time.Second)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		Schedule: constant(50, 3*time.Second), Names: []string{"get"}, Next: get(srv.URL),
		MaxWorkers: 1, MaxLag: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted != "" || res.Total.Count != 150 {
		t.Fatalf("aborted %q, %d requests", res.Aborted, res.Total.Count)
	}
	// ~50 requests were due during the 1 s stall, a third of 150, waiting
	// from ~1 s down to ~0: the slowest tenth waited over half a second.
	if res.Total.P90 < 400 {
		t.Errorf("p90 from the intended time = %.1f ms; the stall does not show", res.Total.P90)
	}
	if res.Total.P50 > 250 {
		t.Errorf("p50 = %.1f ms, want the undisturbed majority", res.Total.P50)
	}
	if res.ServiceTime.P90 > 250 {
		t.Errorf("service time p90 = %.1f ms; only one request was slow once sent", res.ServiceTime.P90)
	}
	if res.Total.Max < 950 {
		t.Errorf("max = %.1f ms, want the stall", res.Total.Max)
	}
	if res.Generator.SendLagMaxMS < 800 {
		t.Errorf("send lag max %.1f ms: the generator did not notice it sent late", res.Generator.SendLagMaxMS)
	}
}

func TestWorkerCapEndsTheRunWithAClearMessage(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Schedule: constant(200, 30*time.Second), Names: []string{"get"}, Next: get(srv.URL),
		MaxWorkers: 20, MaxLag: 300 * time.Millisecond, Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Aborted, "worker cap reached") || !strings.Contains(res.Aborted, "max_workers 20") {
		t.Fatalf("Aborted = %q, want the worker cap named", res.Aborted)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the run took %v after the cap; it should stop soon after", time.Since(start))
	}
	if res.Generator.PeakInFlight > 20 {
		t.Errorf("peak in flight %d above the cap", res.Generator.PeakInFlight)
	}
	if !res.Stages[0].Saturated {
		t.Error("the stopped stage is not marked saturated")
	}
}

// A server with one slot and 20 ms of work serves 50/s; asked for 100/s the
// stage achieves about half and is marked saturated.
func TestSaturatedStageIsMarked(t *testing.T) {
	var slot sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot.Lock()
		time.Sleep(20 * time.Millisecond)
		slot.Unlock()
	}))
	defer srv.Close()
	s, _ := NewSchedule([]Stage{
		{Name: "under", From: 20, To: 20, Duration: 2 * time.Second},
		{Name: "over", From: 100, To: 100, Duration: 2 * time.Second},
	})
	res, err := Run(context.Background(), Config{Schedule: s, Names: []string{"get"}, Next: get(srv.URL), MaxLag: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	under, over := res.Stages[0], res.Stages[1]
	if under.Saturated || under.AchievedRatio < 0.99 {
		t.Errorf("20/s against 50/s of capacity: %+v", under)
	}
	if !over.Saturated || over.AchievedRPS > 70 || over.AchievedRPS < 30 {
		t.Errorf("100/s against 50/s of capacity: achieved %.1f/s saturated %v", over.AchievedRPS, over.Saturated)
	}
}

// A fast server keeps up with every stage: a short stage whose schedule
// holds a fraction of a request (1.5 s at 5/s is 7.5) and the last stage,
// whose last request is answered before the schedule's nominal end, must
// not read as saturated.
func TestAServerThatKeepsUpSaturatesNoStage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	s, _ := NewSchedule([]Stage{
		{Name: "short", From: 5, To: 5, Duration: 1500 * time.Millisecond},
		{Name: "last", From: 20, To: 20, Duration: 2 * time.Second},
	})
	res, err := Run(context.Background(), Config{Schedule: s, Names: []string{"get"}, Next: get(srv.URL), MaxLag: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Stages {
		if st.Saturated || st.AchievedRatio < 0.99 {
			t.Errorf("stage %s against an idle server: ratio %.3f, saturated %v", st.Name, st.AchievedRatio, st.Saturated)
		}
	}
}

func TestErrorsByKind(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
		}
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	paths := []string{srv.URL + "/ok", srv.URL + "/busy", srv.URL + "/slow", closed}
	var i atomic.Int64
	res, err := Run(context.Background(), Config{
		Schedule: constant(40, time.Second), Names: []string{"ok", "busy", "slow", "closed"},
		Next: func() Request {
			k := int(i.Add(1)-1) % 4
			return Request{Kind: k, Method: "GET", URL: paths[k]}
		},
		Timeout: 500 * time.Millisecond, MaxLag: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
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
	if res.ErrorRate < 0.74 || res.ErrorRate > 0.76 {
		t.Errorf("error rate %.3f, want 0.75", res.ErrorRate)
	}
	if len(res.Slowest) == 0 || res.Slowest[0].LatencyMS < 499 {
		t.Errorf("slowest = %+v", res.Slowest)
	}
}

func TestGeneratorHoldsItsRateAndReportsItsCPU(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Trace-Id", "0123456789abcdef0123456789abcdef")
	}))
	defer srv.Close()
	var got atomic.Int64
	res, err := Run(context.Background(), Config{
		Schedule: constant(100, 3*time.Second), Names: []string{"get"}, Next: get(srv.URL),
		MaxLag: 10 * time.Second,
		OnResult: func(r Response) {
			if r.Header.Get("X-Trace-Id") != "" && !r.Failed {
				got.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Count != 300 || res.Generator.Sent != 300 || got.Load() != 300 {
		t.Fatalf("count %d sent %d seen %d, want 300", res.Total.Count, res.Generator.Sent, got.Load())
	}
	if res.Generator.CPUSeconds <= 0 || res.Generator.CPUShare <= 0 || res.Generator.CPUPerRequestUS <= 0 {
		t.Errorf("generator stats %+v", res.Generator)
	}
	if len(res.Seconds) < 3 || res.Seconds[1].TargetRPS < 99.9 || res.Seconds[1].TargetRPS > 100.1 {
		t.Errorf("seconds %+v", res.Seconds)
	}
	if res.Slowest[0].TraceID == "" {
		t.Error("slowest requests lack the trace id")
	}
}
