package engine

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Request is one request to send. Kind indexes Config.Names; Tag is carried
// to OnResult untouched (a scenario puts the virtual customer there).
type Request struct {
	Kind   int
	Tag    string
	Method string
	URL    string
	Body   []byte
	Header http.Header
}

// Response is a finished request as OnResult sees it.
type Response struct {
	Kind    int
	Tag     string
	Status  int
	Failed  bool
	Body    []byte
	Header  http.Header
	Arrived time.Time
}

// Config is one run.
type Config struct {
	Schedule *Schedule
	Names    []string // request names, indexed by Request.Kind
	// Next builds the next request. vegeta's workers call it concurrently.
	Next func() Request
	// MaxWorkers caps concurrent requests. When the cap is reached and the
	// schedule falls more than MaxLag behind, the run stops with a message
	// saying so, instead of queueing without bound.
	MaxWorkers uint64
	MaxLag     time.Duration
	Timeout    time.Duration // per request
	SlowestN   int
	// Progress receives one line a second; nil for none.
	Progress io.Writer
	// OnResult sees every response in order of arrival, on the one
	// goroutine that records them: it must not block (hand work off).
	OnResult func(Response)
	// Drain, when set, is called after the last response and may wait for
	// follow-up work (bounded by its ctx).
	Drain func(ctx context.Context)
	// Phases holds the follow-up measurements Drain waited for.
	Phases *Phases
}

// Defaults for Config's zero values.
const (
	DefaultMaxWorkers = 2000
	DefaultMaxLag     = time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultSlowestN   = 10
)

// fragSep separates kind and tag in the URL fragment that carries them.
const fragSep = "/"

// Run sends the schedule's requests and measures them. It returns an error
// only when it could not start; a run stopped early (worker cap, ctx) still
// returns its Result, with Aborted saying why.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Schedule == nil || cfg.Next == nil {
		return nil, fmt.Errorf("engine: Schedule and Next are required")
	}
	if cfg.MaxWorkers == 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.SlowestN == 0 {
		cfg.SlowestN = DefaultSlowestN
	}
	sched := cfg.Schedule

	tap := &errorTap{errs: map[string]string{}, next: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: int(cfg.MaxWorkers), // the default 2 would churn sockets under load
		IdleConnTimeout:     90 * time.Second,
	}}
	defer tap.next.(*http.Transport).CloseIdleConnections()
	client := &http.Client{
		Transport:     tap,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	atk := vegeta.NewAttacker(
		vegeta.Client(client),
		vegeta.Workers(min(16, cfg.MaxWorkers)),
		vegeta.MaxWorkers(cfg.MaxWorkers),
		vegeta.MaxBody(1<<20),
	)

	var started atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		started.Add(1)
		r := cfg.Next()
		// The fragment never goes on the wire; vegeta hands it back in
		// Result.URL, which is how a result finds its request name.
		t.Method, t.Body, t.Header = r.Method, r.Body, r.Header
		t.URL = r.URL + "#" + strconv.Itoa(r.Kind) + fragSep + r.Tag
		return nil
	}

	rec := newRecorder(sched, cfg.Names, cfg.SlowestN)
	cpu0 := cpuTime()
	t0 := time.Now()
	results := atk.Attack(vegeta.Targeter(targeter), sched, 0, "scaleshop")

	var (
		finished atomic.Int64
		peak     atomic.Int64
		abortMu  sync.Mutex
		aborted  string
		abortAt  time.Duration
	)
	abort := func(why string) {
		abortMu.Lock()
		if aborted == "" {
			aborted, abortAt = why, time.Since(t0)
		}
		abortMu.Unlock()
		atk.Stop()
	}
	watchDone := make(chan struct{})
	watchStopped := make(chan struct{})
	go func() {
		defer close(watchStopped)
		watch(ctx, watchDone, cfg, t0, &started, &finished, &peak, rec, abort)
	}()

	for res := range results {
		end := res.End()
		due := sched.Due(res.Seq)
		kind, tag := splitFragment(res.URL)
		s := sample{
			kind: kind, seq: res.Seq, due: due, sent: res.Timestamp.Sub(t0), end: end.Sub(t0),
			code: int(res.Code), method: res.Method, url: stripFragment(res.URL),
		}
		if res.Headers != nil {
			s.tid = res.Headers.Get("X-Trace-Id")
		}
		// A request cannot have been sent before it was due; if rounding
		// says otherwise, its own duration is the floor.
		s.end = max(s.end, s.due+res.Latency)
		if res.Error != "" || res.Code == 0 || res.Code >= 400 {
			switch k, ok := tap.take(res.Seq); {
			case res.Code >= 400:
				s.errKind = StatusKind(int(res.Code))
			case ok:
				s.errKind = k
			case res.Latency >= cfg.Timeout:
				s.errKind = KindTimeout
			default:
				s.errKind = KindOther
			}
		}
		finished.Add(1)
		rec.add(s)
		if cfg.OnResult != nil {
			cfg.OnResult(Response{
				Kind: kind, Tag: tag, Status: int(res.Code), Failed: s.errKind != "",
				Body: res.Body, Header: res.Headers, Arrived: end,
			})
		}
	}
	elapsed := time.Since(t0)
	close(watchDone)
	<-watchStopped
	if cfg.Drain != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		cfg.Drain(dctx)
		cancel()
	}
	cpu := cpuTime() - cpu0
	wall := time.Since(t0)

	covered := elapsed
	if aborted == "" {
		// A run nobody stopped covered its whole schedule, although its last
		// request was due up to one interval before the end and may have
		// been answered before it: that is not a stage cut short.
		covered = max(elapsed, sched.Duration())
	}
	out := rec.result(covered)
	out.Started = t0
	out.WallS = wall.Seconds()
	out.Aborted = aborted
	if cfg.Phases != nil {
		out.Phases = cfg.Phases.results()
	}
	g := &out.Generator
	g.Cores = runtime.NumCPU()
	g.CPUSeconds = cpu.Seconds()
	g.CPUShare = cpu.Seconds() / (wall.Seconds() * float64(g.Cores))
	g.Sent = started.Load()
	if g.Sent > 0 {
		g.CPUPerRequestUS = float64(cpu.Microseconds()) / float64(g.Sent)
	}
	g.MaxWorkers = cfg.MaxWorkers
	g.PeakInFlight = peak.Load()
	rec.mu.Lock()
	g.SendLagP50MS = ms(rec.sendLag.Quantile(0.5))
	g.SendLagP99MS = ms(rec.sendLag.Quantile(0.99))
	g.SendLagMaxMS = ms(rec.sendLag.Max())
	rec.mu.Unlock()
	sendEnd := elapsed
	if aborted != "" {
		sendEnd = abortAt // nothing is sent after a stop; those seconds say nothing of accuracy
	}
	g.SendRateErrorPct = sendRateError(out.Seconds, sendEnd)
	return out, nil
}

// sendRateError is the worst relative gap between sent and target over
// 5-second windows of the run, skipping the first second (connections are
// opened) and any window the run did not finish. Windows, not single
// seconds: at 60/s one request falling either side of a second boundary
// would read as 1.7 %.
func sendRateError(secs []Second, elapsed time.Duration) float64 {
	const window = 5
	worst := 0.0
	full := int(elapsed / time.Second)
	for start := 1; start+window <= full && start+window <= len(secs); start += window {
		var sent, target float64
		for _, s := range secs[start : start+window] {
			sent += float64(s.Sent)
			target += s.TargetRPS
		}
		if target < 1 {
			continue
		}
		worst = max(worst, math.Abs(sent-target)/target*100)
	}
	return worst
}

// watch prints the progress line and stops the run when the schedule falls
// behind: at the worker cap (the system under test cannot keep up) or below
// it (the generator cannot).
func watch(ctx context.Context, done <-chan struct{}, cfg Config, t0 time.Time,
	started *atomic.Uint64, finished, peak *atomic.Int64, rec *recorder, abort func(string)) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sched := cfg.Schedule
	nextLine := time.Second
	cpuPrev, wallPrev := cpuTime(), time.Now()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			abort("interrupted: " + context.Cause(ctx).Error())
			return
		case <-tick.C:
		}
		elapsed := time.Since(t0)
		sent := started.Load()
		inflight := int64(sent) - finished.Load()
		if inflight > peak.Load() {
			peak.Store(inflight)
		}
		if sent < sched.Total() {
			if lag := elapsed - sched.Due(sent); lag > cfg.MaxLag {
				rate := sched.Rate(elapsed)
				if uint64(inflight) >= cfg.MaxWorkers {
					abort(fmt.Sprintf("worker cap reached at %.0f req/s: %d requests in flight (max_workers %d) and the schedule %s behind; "+
						"the system under test is not keeping up with this rate (raise max_workers only if you expect latency above %s)",
						rate, inflight, cfg.MaxWorkers, lag.Round(time.Millisecond), time.Duration(float64(cfg.MaxWorkers)/max(rate, 1)*float64(time.Second)).Round(time.Millisecond)))
				} else {
					abort(fmt.Sprintf("the generator fell %s behind its schedule at %.0f req/s with only %d requests in flight: "+
						"this machine cannot generate the rate (CPU); lower it", lag.Round(time.Millisecond), rate, inflight))
				}
				return
			}
		}
		if cfg.Progress != nil && elapsed >= nextLine {
			sec := int(nextLine/time.Second) - 1
			nextLine += time.Second
			snap := rec.snapshot(sec)
			now := time.Now()
			cpuNow := cpuTime()
			share := (cpuNow - cpuPrev).Seconds() / (now.Sub(wallPrev).Seconds() * float64(runtime.NumCPU()))
			cpuPrev, wallPrev = cpuNow, now
			var b strings.Builder
			fmt.Fprintf(&b, "[%3ds/%ds] target %5.0f/s", sec+1, int(sched.Duration().Seconds()),
				sched.Rate(time.Duration(sec)*time.Second+time.Second/2))
			if l := snap.last; l != nil {
				fmt.Fprintf(&b, "  sent %5d/s  ok %5d/s  p99 %7s", l.sent, l.ok, fmtDur(l.lat.Quantile(0.99)))
			}
			fmt.Fprintf(&b, "  in flight %4d  |  so far: %d done, p50 %s, p99 %s, errors %d",
				inflight, snap.done, fmtDur(snap.p50), fmtDur(snap.p99), snap.failed)
			fmt.Fprintf(&b, "  |  generator CPU %.0f%%", share*100)
			fmt.Fprintln(cfg.Progress, b.String())
		}
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}

// splitFragment recovers the request kind and tag from a target URL.
func splitFragment(u string) (int, string) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return -1, ""
	}
	k, tag, _ := strings.Cut(u[i+1:], fragSep)
	n, err := strconv.Atoi(k)
	if err != nil {
		return -1, ""
	}
	return n, tag
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func itoa(n int) string { return strconv.Itoa(n) }
