package engine

import (
	"container/heap"
	"math"
	"net/url"
	"sort"
	"sync"
	"time"
)

// recorder turns results into histograms and counters. One goroutine adds;
// the progress line reads under the same lock once a second.
type recorder struct {
	mu       sync.Mutex
	sched    *Schedule
	names    []string
	total    *Latencies
	byName   []*Latencies
	errs     map[string]int64
	errsBy   []map[string]int64
	codes    map[int]int64
	stages   []*stageRec
	seconds  []*secondRec
	slowest  slowHeap
	slowN    int
	sendLag  *Latencies
	service  *Latencies
	measured int64 // results outside the warm-up
	failed   int64
	done     int64
}

type stageRec struct {
	lat            *Latencies
	ok, sent, errs int64
	errKinds       map[string]int64
	// The stage's hits are first .. first+count-1. The latencies of the
	// first and the last tenth of them tell whether a queue grew.
	first, count uint64
	head, tail   *Latencies
}

type secondRec struct {
	lat              *Latencies
	sent, ok, failed int64
}

func newRecorder(s *Schedule, names []string, slowN int) *recorder {
	r := &recorder{
		sched: s, names: names, total: NewLatencies(), errs: map[string]int64{},
		codes: map[int]int64{}, slowN: slowN, sendLag: NewLatencies(), service: NewLatencies(),
	}
	for range names {
		r.byName = append(r.byName, NewLatencies())
		r.errsBy = append(r.errsBy, map[string]int64{})
	}
	for i := range s.Stages() {
		first, next := s.FirstHit(i), s.FirstHit(i+1)
		r.stages = append(r.stages, &stageRec{
			lat: NewLatencies(), errKinds: map[string]int64{}, first: first, count: next - first,
			head: newCoarse(), tail: newCoarse(),
		})
	}
	return r
}

// sample is one finished request, with every time an offset from the start.
type sample struct {
	kind             int
	seq              uint64
	due, sent, end   time.Duration
	code             int
	errKind          string
	method, url, tid string
}

func (r *recorder) second(t time.Duration) *secondRec {
	i := max(int(t/time.Second), 0)
	for len(r.seconds) <= i {
		r.seconds = append(r.seconds, &secondRec{lat: newCoarse()})
	}
	return r.seconds[i]
}

func (r *recorder) add(s sample) {
	lat := s.end - s.due
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	r.sendLag.Record(s.sent - s.due)
	si := r.sched.StageOf(s.seq)
	st := r.stages[si]
	st.sent++
	st.lat.Record(lat)
	if w := st.window(); w > 0 {
		switch pos := s.seq - st.first; {
		case pos < w:
			st.head.Record(lat)
		case pos >= st.count-w:
			st.tail.Record(lat)
		}
	}
	r.second(s.sent).sent++
	sec := r.second(s.due)
	sec.lat.Record(lat)
	if s.errKind == "" {
		st.ok++
		r.second(s.end).ok++
	} else {
		st.errs++
		st.errKinds[s.errKind]++
		r.second(s.end).failed++
	}
	if r.sched.Stages()[si].Warmup {
		return
	}
	r.measured++
	r.total.Record(lat)
	r.service.Record(s.end - s.sent)
	if s.kind >= 0 && s.kind < len(r.byName) {
		r.byName[s.kind].Record(lat)
	}
	if s.code != 0 {
		r.codes[s.code]++
	}
	if s.errKind != "" {
		r.failed++
		r.errs[s.errKind]++
		if s.kind >= 0 && s.kind < len(r.errsBy) {
			r.errsBy[s.kind][s.errKind]++
		}
	}
	if r.slowN > 0 && (len(r.slowest) < r.slowN || lat > r.slowest[0].lat) {
		name := ""
		if s.kind >= 0 && s.kind < len(r.names) {
			name = r.names[s.kind]
		}
		heap.Push(&r.slowest, slowItem{lat: lat, req: SlowRequest{
			Name: name, Method: s.method, URL: s.url, Status: s.code, Error: s.errKind,
			LatencyMS: ms(lat), IntendedAt: s.due.Seconds(), TraceID: s.tid,
		}})
		if len(r.slowest) > r.slowN {
			heap.Pop(&r.slowest)
		}
	}
}

// snapshot is what the progress line shows.
type snapshot struct {
	done, failed int64
	p50, p99     time.Duration
	last         *secondRec
}

func (r *recorder) snapshot(lastSecond int) snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{done: r.done, failed: r.failed, p50: r.total.Quantile(0.5), p99: r.total.Quantile(0.99)}
	if lastSecond >= 0 && lastSecond < len(r.seconds) {
		c := *r.seconds[lastSecond]
		s.last = &c
	}
	return s
}

// result fills in everything the recorder knows; the caller adds the
// generator's own numbers.
func (r *recorder) result(elapsed time.Duration) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{
		Scheduled:   r.sched.Total(),
		Total:       r.total.Summary(),
		ServiceTime: r.service.Summary(),
		Errors:      r.errs,
		Spectrum:    r.total.Spectrum(),
		StatusCode:  map[string]int64{},
	}
	res.Total.Errors = r.failed
	if r.measured > 0 {
		res.ErrorRate = float64(r.failed) / float64(r.measured)
	}
	for code, n := range r.codes {
		res.StatusCode[itoa(code)] = n
	}
	for i, name := range r.names {
		sum := r.byName[i].Summary()
		for _, n := range r.errsBy[i] {
			sum.Errors += n
		}
		res.Requests = append(res.Requests, RequestResult{Name: name, Latency: sum, Errors: r.errsBy[i]})
	}
	for i, st := range r.stages {
		res.Stages = append(res.Stages, r.stageResult(i, st, elapsed))
	}
	for i, sec := range r.seconds {
		from := time.Duration(i) * time.Second
		res.Seconds = append(res.Seconds, Second{
			T: i, TargetRPS: r.sched.Hits(from+time.Second) - r.sched.Hits(from),
			Sent: sec.sent, OK: sec.ok, Errors: sec.failed,
			P50: ms(sec.lat.Quantile(0.5)), P99: ms(sec.lat.Quantile(0.99)), Max: ms(sec.lat.Max()),
		})
	}
	slow := append([]slowItem(nil), r.slowest...)
	sort.Slice(slow, func(i, j int) bool { return slow[i].lat > slow[j].lat })
	for _, s := range slow {
		res.Slowest = append(res.Slowest, s.req)
	}
	return res
}

func (r *recorder) stageResult(i int, st *stageRec, elapsed time.Duration) StageResult {
	def := r.sched.Stages()[i]
	start := r.sched.StageStart(i)
	dur := def.Duration
	if elapsed < start+dur { // the run stopped inside this stage
		dur = max(elapsed-start, 0)
	}
	target := (def.From + def.To) / 2
	out := StageResult{
		Name: def.Name, Warmup: def.Warmup, StartS: start.Seconds(), DurationS: dur.Seconds(),
		TargetRPS: target, Latency: st.lat.Summary(), Errors: st.errKinds,
	}
	out.Latency.Errors = st.errs
	if dur <= 0 {
		out.Saturated = target > 0
		return out
	}
	out.SentRPS = float64(st.sent) / dur.Seconds()
	// A server that keeps up answers the last requests of a stage as fast
	// as the first. One that does not builds a queue: latency grows by
	// (target/capacity - 1) for every second of the stage, so the median
	// latency of the last tenth against the first tenth, over the time
	// between them, gives the rate it actually served. Medians of a tenth
	// each make this robust to a few slow requests.
	served := 1.0 // the share of the offered rate the server kept up with
	if w := st.window(); w > 0 && st.head.Count() > 0 && st.tail.Count() > 0 {
		between := r.sched.Due(st.first+st.count-1-w/2) - r.sched.Due(st.first+w/2)
		growth := st.tail.Quantile(0.5) - st.head.Quantile(0.5)
		if between > 0 && growth > 0 {
			served = between.Seconds() / (between + growth).Seconds()
		}
	}
	out.AchievedRPS = float64(st.ok) / dur.Seconds() * served
	scheduled := r.sched.Hits(start+def.Duration) - r.sched.Hits(start)
	if elapsed < start+def.Duration { // aborted: nothing past the stop was even sent
		out.Saturated = true
	}
	if target > 0 {
		out.AchievedRatio = out.AchievedRPS / target
		// Whole-number request counts cannot reach 99 % of a fraction: a
		// stage of 1.5 s at 5/s schedules 7.5 requests and sends 7. Judge
		// such a stage by the requests it could send.
		if whole := math.Floor(scheduled + 1e-6); whole >= 1 {
			out.AchievedRatio = float64(st.ok) / whole * served
		}
		out.Saturated = out.Saturated || out.AchievedRatio < 0.99
	}
	return out
}

// window is the number of hits in the head and in the tail tenth; 0 when
// the stage is too short to tell a trend from noise.
func (st *stageRec) window() uint64 {
	if st.count < 20 {
		return 0
	}
	return st.count / 10
}

// slowHeap is a min-heap on latency: the root is the fastest of the slow.
type slowItem struct {
	lat time.Duration
	req SlowRequest
}
type slowHeap []slowItem

func (h slowHeap) Len() int           { return len(h) }
func (h slowHeap) Less(i, j int) bool { return h[i].lat < h[j].lat }
func (h slowHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slowHeap) Push(x any)        { *h = append(*h, x.(slowItem)) }
func (h *slowHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// stripFragment removes the bookkeeping fragment from a target URL.
func stripFragment(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Fragment = ""
	return u.String()
}
