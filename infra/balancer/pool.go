// Package balancer spreads requests over the clones of one service: a Pool
// of Members, a Policy that picks one per request, active health checks,
// passive outlier ejection and a retry budget.
//
// The gateway uses it for its public pools and services use it for their
// client-side calls (orders -> catalog). A request's life is
//
//	m, err := pool.Pick()          // ErrNoHealthyMember: answer 503 at once
//	lease := m.Acquire()           // counts the request in flight
//	... send it to m.URL ...
//	lease.Done(balancer.Success)   // or Failure / Dropped: feeds EWMA and ejection
//
// and a retry picks again with pool.Pick(m), excluding the member that failed.
package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoHealthyMember is returned by Pick when no member can take a request.
var ErrNoHealthyMember = errors.New("no healthy member")

// Options tune a pool; the zero value of each field means its default.
type Options struct {
	Policy Policy // default P2CEWMA

	HealthPath     string        // default "/readyz"
	HealthInterval time.Duration // default 2s
	HealthTimeout  time.Duration // default 1s
	UnhealthyAfter int           // consecutive failed checks before a member is marked down; default 2
	HealthyAfter   int           // consecutive good checks before it is marked up again; default 2

	// EjectAfter consecutive failed requests (connect errors, timeouts, 5xx
	// other than 503) eject a member for EjectBase, doubled on each repeat
	// up to EjectMax. Once the time is up, a good probe brings it back.
	EjectAfter int           // default 5; negative disables passive ejection
	EjectBase  time.Duration // default 1s
	EjectMax   time.Duration // default 30s

	// DecayTime is the EWMA's time constant: how fast an old latency
	// sample fades. Default 2s, not the 10s of Finagle and Linkerd: with
	// two members P2C always compares the same pair, so a member whose
	// estimate a hiccup raised gets no samples and recovers only by this
	// decay; on a shared machine hiccups are frequent, and at 10s a clone
	// sat idle for half a minute after one.
	DecayTime time.Duration

	now  func() time.Time // tests
	rand func(n int) int  // tests
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Policy == "" {
		o.Policy = P2CEWMA
	}
	if o.HealthPath == "" {
		o.HealthPath = "/readyz"
	}
	def(&o.HealthInterval, 2*time.Second)
	def(&o.HealthTimeout, time.Second)
	def(&o.EjectBase, time.Second)
	def(&o.EjectMax, 30*time.Second)
	def(&o.DecayTime, 2*time.Second)
	defInt(&o.UnhealthyAfter, 2)
	defInt(&o.HealthyAfter, 2)
	defInt(&o.EjectAfter, 5)
	if o.now == nil {
		o.now = time.Now
	}
	if o.rand == nil {
		o.rand = rand.IntN
	}
	return o
}

// Pool is a named, changing set of members. Pick is lock-free: it reads an
// immutable snapshot that Add, Remove and Replace swap atomically.
type Pool struct {
	Name    string
	opts    Options
	policy  picker
	mu      sync.Mutex // serialises membership changes
	members atomic.Pointer[[]*Member]
	rr      atomic.Uint64
}

// NewPool builds a pool of the given member URLs (each "http://host:port").
// Members start healthy, so traffic flows before the first check.
func NewPool(name string, urls []string, opts Options) (*Pool, error) {
	opts = opts.withDefaults()
	policy, err := newPicker(opts.Policy)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", name, err)
	}
	p := &Pool{Name: name, opts: opts, policy: policy}
	empty := []*Member{}
	p.members.Store(&empty)
	for _, raw := range urls {
		if _, err := p.Add(raw, SourceConfig); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Policy returns the pool's balancing policy.
func (p *Pool) Policy() Policy { return p.opts.Policy }

// Where a member came from; Replace only touches members of its source.
const (
	SourceConfig = "config"
	SourceAdmin  = "admin"
)

// ParseMemberURL accepts "http://host:port" (or https) with no path.
func ParseMemberURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("bad member URL %q: want http://host:port", raw)
	}
	u.Path = ""
	return u, nil
}

// Add puts a member into the pool, or returns the existing one with that
// URL (un-draining it: adding back a drained member is how an operator
// cancels a drain).
func (p *Pool) Add(raw, source string) (*Member, error) {
	u, err := ParseMemberURL(raw)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", p.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := *p.members.Load()
	for _, m := range cur {
		if m.URL.String() == u.String() {
			m.draining.Store(false)
			return m, nil
		}
	}
	m := newMember(u, source, p)
	if source == SourceAdmin {
		// An operator's addition waits for its first probe (the pool's
		// own members start healthy so traffic flows at start-up).
		m.healthy.Store(false)
		m.probing = true
	}
	next := append(slices.Clip(cur), m)
	p.members.Store(&next)
	return m, nil
}

// Remove takes the member out of the pool at once. Requests already sent to
// it finish normally (they hold their lease); Drain first to let an
// operator watch in-flight reach zero before removing.
func (p *Pool) Remove(raw string) error {
	u, err := ParseMemberURL(raw)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := *p.members.Load()
	i := slices.IndexFunc(cur, func(m *Member) bool { return m.URL.String() == u.String() })
	if i < 0 {
		return fmt.Errorf("pool %s has no member %s", p.Name, u)
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	p.members.Store(&next)
	return nil
}

// Drain stops new requests to the member; in-flight ones finish.
func (p *Pool) Drain(raw string) (*Member, error) {
	m := p.Get(raw)
	if m == nil {
		return nil, fmt.Errorf("pool %s has no member %s", p.Name, raw)
	}
	m.draining.Store(true)
	return m, nil
}

// Get returns the member with that URL, or nil.
func (p *Pool) Get(raw string) *Member {
	u, err := ParseMemberURL(raw)
	if err != nil {
		return nil
	}
	for _, m := range p.Members() {
		if m.URL.String() == u.String() {
			return m
		}
	}
	return nil
}

// Replace makes the members of source exactly urls (DNS re-resolution):
// new ones are added, vanished ones removed, the rest keep their state.
func (p *Pool) Replace(source string, urls []string) error {
	want := map[string]bool{}
	for _, raw := range urls {
		u, err := ParseMemberURL(raw)
		if err != nil {
			return err
		}
		want[u.String()] = true
	}
	p.mu.Lock()
	cur := *p.members.Load()
	next := make([]*Member, 0, len(cur)+len(want))
	for _, m := range cur {
		if m.Source != source || want[m.URL.String()] {
			next = append(next, m)
			delete(want, m.URL.String())
		}
	}
	for raw := range want {
		u, _ := ParseMemberURL(raw)
		next = append(next, newMember(u, source, p))
	}
	p.members.Store(&next)
	p.mu.Unlock()
	return nil
}

// Members returns the current members; the slice must not be modified.
func (p *Pool) Members() []*Member { return *p.members.Load() }

// Pick chooses a member for one request by the pool's policy, skipping
// members that are down, ejected, draining or listed in excluding (the
// ones a retry already tried). When every eligible member is excluded it
// falls back to them rather than fail: trying one again beats a 503.
func (p *Pool) Pick(excluding ...*Member) (*Member, error) {
	all := p.Members()
	now := p.opts.now()
	var buf [16]*Member
	cands := buf[:0]
	var excluded []*Member
	for _, m := range all {
		if !m.eligible() {
			continue
		}
		if slices.Contains(excluding, m) {
			excluded = append(excluded, m)
			continue
		}
		cands = append(cands, m)
	}
	if len(cands) == 0 {
		cands = excluded
	}
	if len(cands) == 0 {
		return nil, ErrNoHealthyMember
	}
	return p.policy(p, cands, now), nil
}

// Ready reports whether Pick would find a member.
func (p *Pool) Ready() bool {
	_, err := p.Pick()
	return err == nil
}
