package balancer

import (
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one clone of a service.
type Member struct {
	URL    *url.URL
	Source string // SourceConfig, SourceAdmin or "dns:<name>"
	pool   *Pool

	inFlight atomic.Int64
	draining atomic.Bool
	healthy  atomic.Bool // the active checks' verdict
	name     atomic.Pointer[string]
	// ejectedUntilNano > 0 means passively ejected: not picked before that
	// time, and after it only once a probe has succeeded.
	ejectedUntilNano atomic.Int64

	mu          sync.Mutex
	ewma        float64 // latency estimate, seconds (peak EWMA)
	ewmaAt      time.Time
	consecFails int // requests, for passive ejection
	ejections   int // how many times in a row; grows the backoff
	checkFails  int // active checks
	checkOKs    int
	requests    int64
	failures    int64
	ejectTotal  int64
	readmitted  time.Time
	// probing: added at runtime and not probed yet. It takes no traffic
	// until its first probe passes: an operator's typo or a clone still
	// starting must not receive requests meanwhile.
	probing bool
}

func newMember(u *url.URL, source string, p *Pool) *Member {
	m := &Member{URL: u, Source: source, pool: p}
	m.healthy.Store(true)
	return m
}

// Label is how metrics, spans and the admin API name the member: its
// host:port, one spelling everywhere so they can be joined on it.
func (m *Member) Label() string { return m.URL.Host }

// Name is the clone's own name ("catalog-2"), as its answers' X-Served-By
// header gives it; empty until it has answered.
func (m *Member) Name() string {
	if n := m.name.Load(); n != nil {
		return *n
	}
	return ""
}

// LearnName records the clone's name from one of its answers.
func (m *Member) LearnName(name string) {
	if name == "" || name == m.Name() {
		return
	}
	m.name.Store(&name)
}

// Healthy reports the active checks' last verdict.
func (m *Member) Healthy() bool { return m.healthy.Load() }

// Draining reports whether the member takes no new requests.
func (m *Member) Draining() bool { return m.draining.Load() }

// InFlight is the number of requests sent and not yet done.
func (m *Member) InFlight() int64 { return m.inFlight.Load() }

// Ejected reports whether passive outlier detection has taken the member out.
func (m *Member) Ejected() bool { return m.ejectedUntilNano.Load() != 0 }

func (m *Member) eligible() bool {
	return m.healthy.Load() && !m.draining.Load() && m.ejectedUntilNano.Load() == 0
}

// Outcome is how a request to a member ended.
type Outcome int

// Outcomes reported to Lease.Done.
const (
	// Success: an answer came back, whatever its status, except as below.
	Success Outcome = iota
	// Failure: connect error, timeout, reset, or a 5xx other than 503
	// (a 503 is a deliberate "not now" from a working process). Counts
	// toward passive ejection and penalises the latency estimate.
	Failure
	// Dropped: the caller gave up (client went away); tells nothing about
	// the member.
	Dropped
	// Unreachable: the connection was refused or could not be made. No
	// process listens, so the member is ejected at once rather than after
	// EjectAfter tries (unless it is the last one in service).
	Unreachable
)

// Lease is one request in flight to a member.
type Lease struct {
	m     *Member
	start time.Time
	done  atomic.Bool
}

// Acquire counts a request in flight; call Done exactly once when it ends.
func (m *Member) Acquire() *Lease {
	m.inFlight.Add(1)
	return &Lease{m: m, start: m.pool.opts.now()}
}

// Member is the leased member.
func (l *Lease) Member() *Member { return l.m }

// Done ends the request: it leaves the in-flight count, its latency since
// Acquire feeds the estimate, and a Failure counts toward ejection.
// Calls after the first are ignored.
func (l *Lease) Done(o Outcome) {
	if !l.done.CompareAndSwap(false, true) {
		return
	}
	m := l.m
	m.inFlight.Add(-1)
	if o == Dropped {
		return
	}
	now := m.pool.opts.now()
	rtt := now.Sub(l.start).Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests++
	if o == Failure || o == Unreachable {
		m.failures++
		// A fast failure must not make a broken member look fast.
		rtt = math.Max(rtt, failurePenalty.Seconds())
		m.consecFails++
		threshold := m.pool.opts.EjectAfter
		if o == Unreachable {
			threshold = 1
		}
		if m.pool.opts.EjectAfter > 0 && m.consecFails >= threshold && !m.Ejected() && m.pool.mayEject(m) {
			m.ejectLocked(now)
		}
	} else {
		m.consecFails = 0
		// Good for a whole EjectMax since coming back: forget the past
		// ejections, so the next one starts at EjectBase again.
		if m.ejections > 0 && now.Sub(m.readmitted) > m.pool.opts.EjectMax {
			m.ejections = 0
		}
	}
	m.observeLocked(rtt, now)
}

// failurePenalty is the latency a failed request counts as.
const failurePenalty = time.Second

// observeLocked is a peak EWMA (as Finagle's and Linkerd's balancers): a
// slower sample is taken at once, a faster one blends in with a weight
// that depends on the time since the last sample.
func (m *Member) observeLocked(rtt float64, now time.Time) {
	if m.ewmaAt.IsZero() || rtt > m.ewma {
		m.ewma = rtt
	} else {
		w := math.Exp(-now.Sub(m.ewmaAt).Seconds() / m.pool.opts.DecayTime.Seconds())
		m.ewma = m.ewma*w + rtt*(1-w)
	}
	m.ewmaAt = now
}

// latency is the estimate decayed toward zero for the time without
// samples, so a member once slow is tried again after a while instead of
// being starved forever.
func (m *Member) latency(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ewmaAt.IsZero() {
		return 0
	}
	return m.ewma * math.Exp(-now.Sub(m.ewmaAt).Seconds()/m.pool.opts.DecayTime.Seconds())
}

func (m *Member) ejectLocked(now time.Time) {
	o := m.pool.opts
	backoff := o.EjectBase << min(m.ejections, 16)
	if backoff > o.EjectMax || backoff <= 0 {
		backoff = o.EjectMax
	}
	m.ejections++
	m.ejectTotal++
	m.consecFails = 0
	m.ejectedUntilNano.Store(now.Add(backoff).UnixNano())
}

// mayEject keeps at least one member in service: ejecting the last one
// would turn a partial outage into a full one.
func (p *Pool) mayEject(target *Member) bool {
	for _, m := range p.Members() {
		if m != target && m.eligible() {
			return true
		}
	}
	return false
}

// ejectionDue reports whether the member's ejection time is over, so a
// probe may bring it back.
func (m *Member) ejectionDue(now time.Time) bool {
	until := m.ejectedUntilNano.Load()
	return until != 0 && now.UnixNano() >= until
}

// readmit ends an ejection after a good probe; a bad probe ejects again
// for longer.
func (m *Member) readmit(ok bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.ejectedUntilNano.Store(0)
		m.readmitted = now
		m.ewmaAt = time.Time{} // start the estimate afresh
		return
	}
	m.ejectLocked(now)
}
