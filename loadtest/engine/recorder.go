package engine

import (
	"container/heap"
	"math"
	"sort"
	"sync"
	"time"
)

// recorder turns results into histograms and counters. Workers add under
// the lock; the progress line reads under it once a second. Only successful
// requests enter the latency histograms: a refused connection answers in
// microseconds and would make a failing server look fast.
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
	okAt     []int32 // successes by the millisecond they completed in
	slowest  slowHeap
	slowN    int
	sendLag  *Latencies
	service  *Latencies
	measured int64 // results outside the warm-up
	failed   int64
}

type stageRec struct {
	lat            *Latencies
	ok, sent, errs int64
	errKinds       map[string]int64
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
	for range s.Stages() {
		r.stages = append(r.stages, &stageRec{lat: NewLatencies(), errKinds: map[string]int64{}})
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
	// A request cannot have been answered before it was due.
	s.end = max(s.end, s.due, s.sent)
	lat := s.end - s.due
	ok := s.errKind == ""
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sendLag.Record(s.sent - s.due)
	si := r.sched.StageOf(s.seq)
	st := r.stages[si]
	st.sent++
	r.second(s.sent).sent++
	if ok {
		st.ok++
		st.lat.Record(lat)
		r.second(s.due).lat.Record(lat)
		r.second(s.end).ok++
		msec := int(s.end / time.Millisecond)
		if n := msec + 1 - len(r.okAt); n > 0 {
			r.okAt = append(r.okAt, make([]int32, max(n, 1024))...)
		}
		r.okAt[msec]++
	} else {
		st.errs++
		st.errKinds[s.errKind]++
		r.second(s.end).failed++
	}
	if r.sched.Stages()[si].Warmup {
		return
	}
	r.measured++
	if s.code != 0 {
		r.codes[s.code]++
	}
	if ok {
		r.total.Record(lat)
		r.service.Record(s.end - s.sent)
		if s.kind >= 0 && s.kind < len(r.byName) {
			r.byName[s.kind].Record(lat)
		}
	} else {
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

// okBetween counts the successes that completed in (from, to].
func (r *recorder) okBetween(from, to time.Duration) int64 {
	var n int64
	for i := max(int(from/time.Millisecond)+1, 0); i <= int(to/time.Millisecond) && i < len(r.okAt); i++ {
		n += int64(r.okAt[i])
	}
	return n
}

// snapshot is what the progress line shows.
type snapshot struct {
	measured, failed int64
	p50, p99         time.Duration
	last             *secondRec
}

func (r *recorder) snapshot(lastSecond int) snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{measured: r.measured, failed: r.failed, p50: r.total.Quantile(0.5), p99: r.total.Quantile(0.99)}
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

// stageResult reports one stage. Achieved is the successes the server
// completed while the stage ran, per second: a server that falls behind
// answers at its own pace whatever was offered, so the count by completion
// time is what it held. The window is shifted by the stage's median latency
// so that a server that keeps up is credited with every request of the
// stage, the last one included, which is due at the stage's very end.
func (r *recorder) stageResult(i int, st *stageRec, elapsed time.Duration) StageResult {
	def := r.sched.Stages()[i]
	start := r.sched.StageStart(i)
	dur := def.Duration
	cut := elapsed < start+dur // the run stopped inside this stage
	if cut {
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
		out.dropPercentiles()
		return out
	}
	out.SentRPS = float64(st.sent) / dur.Seconds()
	shift := st.lat.Quantile(0.5)
	ok := r.okBetween(start+shift, start+dur+shift)
	out.AchievedRPS = float64(ok) / dur.Seconds()
	scheduled := r.sched.Hits(start+def.Duration) - r.sched.Hits(start)
	if target > 0 {
		out.AchievedRatio = out.AchievedRPS / target
		// Whole-number request counts cannot reach 99 % of a fraction: a
		// stage of 1.5 s at 5/s schedules 7.5 requests and sends 7. Judge
		// such a stage by the requests it could send.
		if whole := math.Floor(scheduled + 1e-6); whole >= 1 && !cut {
			out.AchievedRatio = float64(ok) / whole
		}
		// One request due at the stage's very end whose answer lands past the
		// window is a boundary effect, not a shortfall; at a low rate it is
		// more than 1 %, so a stage may miss by that one request.
		shortBy := math.Floor(scheduled+1e-6) - float64(ok)
		out.Saturated = cut || (out.AchievedRatio < 0.99 && shortBy > 1)
	}
	if out.Saturated {
		out.dropPercentiles()
	}
	return out
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
