package engine

import (
	"sort"
	"sync"
	"time"
)

// Phases records follow-up measurements by name, from any goroutine: the
// time from an order's acceptance to its final status, for example.
type Phases struct {
	mu    sync.Mutex
	lat   map[string]*Latencies
	errs  map[string]map[string]int64
	order []string
}

// NewPhases returns an empty set.
func NewPhases() *Phases {
	return &Phases{lat: map[string]*Latencies{}, errs: map[string]map[string]int64{}}
}

func (p *Phases) ensure(name string) {
	if _, ok := p.lat[name]; !ok {
		p.lat[name] = NewLatencies()
		p.errs[name] = map[string]int64{}
		p.order = append(p.order, name)
	}
}

// Record adds one duration to the named phase.
func (p *Phases) Record(name string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ensure(name)
	p.lat[name].Record(d)
}

// Fail counts one failure of the named phase by kind.
func (p *Phases) Fail(name, kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ensure(name)
	p.errs[name][kind]++
}

// Results are the phases recorded so far, by name.
func (p *Phases) Results() []PhaseResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := append([]string(nil), p.order...)
	sort.Strings(names)
	out := make([]PhaseResult, 0, len(names))
	for _, n := range names {
		sum := p.lat[n].Summary()
		for _, c := range p.errs[n] {
			sum.Errors += c
		}
		out = append(out, PhaseResult{Name: n, Latency: sum, Errors: p.errs[n]})
	}
	return out
}
