package engine

import (
	"bytes"
	"context"
	"errors"
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
	Kind   int
	Tag    string
	Status int
	Failed bool
	// Warmup is true for a request of a warm-up stage: a follow-up
	// measurement leaves it out as the totals do.
	Warmup bool
	// Body is the response body when Config.KeepBody asked for it.
	Body    []byte
	Header  http.Header
	Arrived time.Time
}

// Config is one run.
type Config struct {
	Schedule *Schedule
	Names    []string // request names, indexed by Request.Kind
	// Next builds the next request. The pacer calls it, one call at a time,
	// when the request is due.
	Next func() Request
	// MaxWorkers caps concurrent requests. When every worker is busy and
	// the schedule falls more than MaxLag behind, the run stops with a
	// message saying so, instead of queueing without bound.
	MaxWorkers uint64
	MaxLag     time.Duration
	Timeout    time.Duration // per request
	SlowestN   int
	// Progress receives one line a second; nil for none.
	Progress io.Writer
	// OnResult sees every response, on the worker that received it, so
	// calls are concurrent: it must not block (hand work off).
	OnResult func(Response)
	// KeepBody says which request kinds OnResult needs the body of; the
	// others are read and discarded without a copy.
	KeepBody func(kind int) bool
	// Drain, when set, is called after the last response and may wait for
	// follow-up work (bounded by its ctx).
	Drain func(ctx context.Context)
	// Phases holds the follow-up measurements Drain waited for.
	Phases *Phases
	// Transport sends the requests; nil means one shared NewTransport
	// sized for MaxWorkers. Tests pass an in-memory one.
	Transport http.RoundTripper
}

// Defaults for Config's zero values.
const (
	DefaultMaxWorkers = 2000
	DefaultMaxLag     = time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultSlowestN   = 10
	maxBody           = 1 << 20
)

// NewTransport is the Transport every benchmark shares: keep-alive with as
// many idle connections per host as requests in flight (the default 2
// would open and close a connection per request under load), and no
// transparent gzip, so a response is read as the server sent it.
func NewTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// job is one due request handed from the pacer to a worker.
type job struct {
	seq uint64
	due time.Duration
	req Request
}

// runner is one run's shared state.
type runner struct {
	cfg      Config
	sched    *Schedule
	rt       http.RoundTripper
	rec      *recorder
	ctx      context.Context // the caller's: cancels requests in flight
	t0       time.Time
	jobs     chan job
	workers  sync.WaitGroup
	nworkers uint64 // the pacer's alone
	started  atomic.Uint64
	finished atomic.Int64
	peak     atomic.Int64 // most requests in flight at once
	abortMu  sync.Mutex
	aborted  string
	abortAt  time.Duration
}

func (r *runner) abort(why string) {
	r.abortMu.Lock()
	defer r.abortMu.Unlock()
	if r.aborted == "" {
		r.aborted, r.abortAt = why, time.Since(r.t0)
	}
}

// Run sends the schedule's requests and measures them. It returns an error
// only when it could not start; a run stopped early (worker cap, send lag,
// ctx) still returns its Result, with Aborted saying why.
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
	rt := cfg.Transport
	if rt == nil {
		t := NewTransport(int(cfg.MaxWorkers))
		defer t.CloseIdleConnections()
		rt = t
	}
	sched := cfg.Schedule
	r := &runner{cfg: cfg, sched: sched, rt: rt, rec: newRecorder(sched, cfg.Names, cfg.SlowestN), ctx: ctx, jobs: make(chan job)}

	cpu0 := cpuTime()
	r.t0 = time.Now()
	watchDone := make(chan struct{})
	watchStopped := make(chan struct{})
	go func() {
		defer close(watchStopped)
		r.watch(watchDone)
	}()
	r.pace()
	close(r.jobs)
	r.workers.Wait()
	elapsed := time.Since(r.t0)
	close(watchDone)
	<-watchStopped
	if cfg.Drain != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		cfg.Drain(dctx)
		cancel()
	}
	cpu := cpuTime() - cpu0
	wall := time.Since(r.t0)

	aborted, abortAt := r.aborted, r.abortAt
	covered := elapsed
	if aborted == "" {
		// A run nobody stopped covered its whole schedule, although its last
		// request was due up to one interval before the end and may have
		// been answered before it: that is not a stage cut short.
		covered = max(elapsed, sched.Duration())
	} else {
		covered = abortAt
	}
	out := r.rec.result(covered)
	out.Started = r.t0
	out.WallS = wall.Seconds()
	out.Aborted = aborted
	if cfg.Phases != nil {
		out.Phases = cfg.Phases.Results()
	}
	g := &out.Generator
	g.Cores = runtime.NumCPU()
	g.CPUSeconds = cpu.Seconds()
	if wall > 0 {
		g.CPUShare = cpu.Seconds() / (wall.Seconds() * float64(g.Cores))
	}
	g.Sent = r.started.Load()
	if g.Sent > 0 {
		g.CPUPerRequestUS = float64(cpu.Nanoseconds()) / 1000 / float64(g.Sent)
	}
	g.MaxWorkers = cfg.MaxWorkers
	g.Workers = r.nworkers
	g.PeakInFlight = r.peak.Load()
	r.rec.mu.Lock()
	g.SendLagP50MS = ms(r.rec.sendLag.Quantile(0.5))
	g.SendLagP99MS = ms(r.rec.sendLag.Quantile(0.99))
	g.SendLagMaxMS = ms(r.rec.sendLag.Max())
	r.rec.mu.Unlock()
	sendEnd := elapsed
	if aborted != "" {
		sendEnd = abortAt // nothing is sent after a stop; those seconds say nothing of accuracy
	}
	g.SendRateErrorPct = sendRateError(out.Seconds, sendEnd)
	return out, nil
}

// pace hands each request to a worker when it is due. Workers are added
// only when every one is busy, up to MaxWorkers, so a fast server is
// driven by a handful of goroutines. It stops the run when the schedule
// falls more than MaxLag behind: at the worker cap (the system under test
// cannot keep up) or below it (the generator cannot).
func (r *runner) pace() {
	cfg := r.cfg
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for seq := range r.sched.Total() {
		due := r.sched.Due(seq)
		if wait := due - time.Since(r.t0); wait > 0 {
			timer.Reset(wait)
			select {
			case <-r.ctx.Done():
				r.abort("interrupted: " + context.Cause(r.ctx).Error())
				return
			case <-timer.C:
			}
		}
		lag := time.Since(r.t0) - due
		if lag > cfg.MaxLag {
			inflight := int64(r.started.Load()) - r.finished.Load()
			r.abort(fmt.Sprintf("the generator fell %s behind its schedule at %.0f req/s with only %d requests in flight: "+
				"this machine cannot generate the rate (CPU); lower it", lag.Round(time.Millisecond), r.sched.Rate(due), inflight))
			return
		}
		j := job{seq: seq, due: due, req: cfg.Next()}
		select {
		case r.jobs <- j:
		default:
			if r.nworkers < cfg.MaxWorkers {
				r.nworkers++
				r.workers.Go(r.work)
				r.jobs <- j
				break
			}
			// Every worker is busy: wait for one, but only as long as the
			// lag allows.
			timer.Reset(cfg.MaxLag - lag)
			select {
			case r.jobs <- j:
			case <-r.ctx.Done():
				r.abort("interrupted: " + context.Cause(r.ctx).Error())
				return
			case <-timer.C:
				rate := r.sched.Rate(due)
				inflight := int64(r.started.Load()) - r.finished.Load()
				r.abort(fmt.Sprintf("worker cap reached at %.0f req/s: %d requests in flight (max_workers %d) and the schedule %s behind; "+
					"the system under test is not keeping up with this rate (raise max_workers only if you expect latency above %s)",
					rate, inflight, cfg.MaxWorkers, cfg.MaxLag.Round(time.Millisecond),
					time.Duration(float64(cfg.MaxWorkers)/max(rate, 1)*float64(time.Second)).Round(time.Millisecond)))
				return
			}
		}
	}
}

func (r *runner) work() {
	for j := range r.jobs {
		r.send(j)
	}
}

// send makes one request and records it.
func (r *runner) send(j job) {
	raise(&r.peak, int64(r.started.Add(1))-r.finished.Load())
	sent := time.Since(r.t0)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
	var body io.Reader
	if j.req.Body != nil {
		body = bytes.NewReader(j.req.Body)
	}
	s := sample{kind: j.req.Kind, seq: j.seq, due: j.due, sent: sent}
	var (
		header http.Header
		kept   []byte
	)
	req, err := http.NewRequestWithContext(ctx, j.req.Method, j.req.URL, body)
	if err == nil {
		if j.req.Header != nil {
			req.Header = j.req.Header
		}
		var resp *http.Response
		resp, err = r.rt.RoundTrip(req)
		if err == nil {
			s.code, header = resp.StatusCode, resp.Header
			if r.cfg.KeepBody != nil && r.cfg.KeepBody(j.req.Kind) {
				kept, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
			} else {
				_, err = io.Copy(io.Discard, resp.Body)
			}
			resp.Body.Close()
		}
	}
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	s.end = time.Since(r.t0)
	switch {
	case err != nil && timedOut:
		s.errKind = KindTimeout
	case err != nil:
		s.errKind = KindOf(err)
	case s.code >= 400:
		s.errKind = StatusKind(s.code)
	}
	if header != nil {
		s.tid = header.Get("X-Trace-Id")
	}
	s.method, s.url = j.req.Method, j.req.URL
	r.finished.Add(1)
	r.rec.add(s)
	if r.cfg.OnResult != nil {
		r.cfg.OnResult(Response{
			Kind: j.req.Kind, Tag: j.req.Tag, Status: s.code, Failed: s.errKind != "",
			Warmup: r.sched.Stages()[r.sched.StageOf(j.seq)].Warmup,
			Body:   kept, Header: header, Arrived: r.t0.Add(s.end),
		})
	}
}

// raise sets a to v if v is larger.
func raise(a *atomic.Int64, v int64) {
	for p := a.Load(); v > p && !a.CompareAndSwap(p, v); p = a.Load() {
	}
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

// watch prints the progress line once a second.
func (r *runner) watch(done <-chan struct{}) {
	if r.cfg.Progress == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sched := r.sched
	cpuPrev, wallPrev := cpuTime(), time.Now()
	for sec := 0; ; sec++ {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		inflight := int64(r.started.Load()) - r.finished.Load()
		snap := r.rec.snapshot(sec)
		now := time.Now()
		cpuNow := cpuTime()
		share := 0.0
		if wall := now.Sub(wallPrev).Seconds(); wall > 0 {
			share = (cpuNow - cpuPrev).Seconds() / (wall * float64(runtime.NumCPU()))
		}
		cpuPrev, wallPrev = cpuNow, now
		var b strings.Builder
		at := time.Duration(sec)*time.Second + time.Second/2
		fmt.Fprintf(&b, "[%3ds/%ds] target %5.0f/s", sec+1, int(sched.Duration().Seconds()), sched.Rate(at))
		if l := snap.last; l != nil {
			p99 := "-"
			if l.ok > 0 {
				p99 = fmtDur(l.lat.Quantile(0.99))
			}
			fmt.Fprintf(&b, "  sent %5d/s  ok %5d/s  p99 %7s", l.sent, l.ok, p99)
		}
		fmt.Fprintf(&b, "  in flight %4d  |  ", inflight)
		if snap.measured == 0 {
			// Nothing measured yet: a p50 of an empty histogram would read 0µs.
			b.WriteString("warming up (not measured)")
		} else {
			fmt.Fprintf(&b, "so far: %d done, p50 %s, p99 %s, errors %d", snap.measured, fmtDur(snap.p50), fmtDur(snap.p99), snap.failed)
		}
		fmt.Fprintf(&b, "  |  generator CPU %.0f%%", share*100)
		fmt.Fprintln(r.cfg.Progress, b.String())
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

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func itoa(n int) string { return strconv.Itoa(n) }
