// Package balancer keeps a pool of backend clones, checks their health and
// picks one per request.
package balancer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoHealthyMember is returned when every member of a pool is down.
var ErrNoHealthyMember = errors.New("no healthy member")

// Member is one backend clone.
type Member struct {
	URL      *url.URL
	healthy  atomic.Bool
	inFlight atomic.Int64
}

// Healthy reports the last health verdict.
func (m *Member) Healthy() bool { return m.healthy.Load() }

// Acquire counts a request in flight; call the returned func when it ends.
func (m *Member) Acquire() (release func()) {
	m.inFlight.Add(1)
	return func() { m.inFlight.Add(-1) }
}

// Pool is a named set of members with round-robin selection over the
// healthy ones.
type Pool struct {
	Name    string
	mu      sync.RWMutex
	members []*Member
	next    atomic.Uint64
}

// NewPool builds a pool; members start healthy so traffic flows before the
// first check completes.
func NewPool(name string, urls []string) (*Pool, error) {
	p := &Pool{Name: name}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, errors.New("pool " + name + ": bad member URL " + raw)
		}
		m := &Member{URL: u}
		m.healthy.Store(true)
		p.members = append(p.members, m)
	}
	return p, nil
}

// Pick returns the next healthy member in round-robin order.
func (p *Pool) Pick() (*Member, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := len(p.members)
	start := p.next.Add(1)
	for i := range n {
		m := p.members[(int(start)+i)%n]
		if m.Healthy() {
			return m, nil
		}
	}
	return nil, ErrNoHealthyMember
}

// Members returns a snapshot of the pool.
func (p *Pool) Members() []*Member {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]*Member(nil), p.members...)
}

// MemberStatus is one member as /admin/backends shows it.
type MemberStatus struct {
	URL      string `json:"url"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`
}

// Status lists the members.
func (p *Pool) Status() []MemberStatus {
	var out []MemberStatus
	for _, m := range p.Members() {
		out = append(out, MemberStatus{URL: m.URL.String(), Healthy: m.Healthy(), InFlight: m.inFlight.Load()})
	}
	return out
}

// CheckHealth polls every member's /readyz each interval until ctx ends.
func (p *Pool) CheckHealth(ctx context.Context, client *http.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, m := range p.Members() {
			m.healthy.Store(probe(ctx, client, m.URL.JoinPath("/readyz").String()) == nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}
