package balancer

import (
	"fmt"
	"time"
)

// Policy names how a pool picks among its eligible members.
type Policy string

// The policies; P2CEWMA is the default.
const (
	// RoundRobin takes members in turn: exact and oblivious to load.
	RoundRobin Policy = "round_robin"
	// LeastRequest compares two random members (power of two choices) and
	// takes the one with fewer requests in flight.
	LeastRequest Policy = "least_request"
	// P2CEWMA compares two random members by latency estimate × (in flight
	// + 1) and takes the cheaper: a slow clone gets little traffic.
	P2CEWMA Policy = "p2c_ewma"
)

// Policies lists every policy, for config validation and docs.
var Policies = []Policy{RoundRobin, LeastRequest, P2CEWMA}

type picker func(p *Pool, cands []*Member, now time.Time) *Member

func newPicker(policy Policy) (picker, error) {
	switch policy {
	case RoundRobin:
		return pickRoundRobin, nil
	case LeastRequest:
		return pickTwo(func(m *Member, _ time.Time) float64 { return float64(m.inFlight.Load()) }), nil
	case P2CEWMA:
		return pickTwo(ewmaCost), nil
	}
	return nil, fmt.Errorf("unknown balancing policy %q (want one of %v)", policy, Policies)
}

func pickRoundRobin(p *Pool, cands []*Member, _ time.Time) *Member {
	return cands[(p.rr.Add(1)-1)%uint64(len(cands))]
}

// pickTwo is the power of two choices: two distinct random members, the
// cheaper one wins. It avoids the herd that "always the cheapest" causes
// when many requests read the same stale costs.
func pickTwo(cost func(*Member, time.Time) float64) picker {
	return func(p *Pool, cands []*Member, now time.Time) *Member {
		if len(cands) == 1 {
			return cands[0]
		}
		i := p.opts.rand(len(cands))
		j := p.opts.rand(len(cands) - 1)
		if j >= i {
			j++
		}
		a, b := cands[i], cands[j]
		if cost(b, now) < cost(a, now) {
			return b
		}
		return a
	}
}

// unmeasuredBusy is the cost of a member with requests in flight but no
// latency sample yet: high, so a new member is not flooded before its
// first answer shows how fast it is.
const unmeasuredBusy = 1e6

func ewmaCost(m *Member, now time.Time) float64 {
	lat := m.latency(now)
	inflight := float64(m.inFlight.Load())
	if lat == 0 && inflight > 0 {
		return unmeasuredBusy + inflight
	}
	return lat * (inflight + 1)
}
