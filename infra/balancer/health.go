package balancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// CheckHealth probes every member's health path each HealthInterval until
// ctx ends: UnhealthyAfter failures in a row (or one refused connection)
// mark a member down,
// HealthyAfter successes mark it up. In the same round, members whose
// passive ejection time is over are probed and let back in on success.
func (p *Pool) CheckHealth(ctx context.Context, client *http.Client) {
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		p.checkOnce(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkOnce probes all members in parallel, so one hung member does not
// delay the verdict on the others.
func (p *Pool) checkOnce(ctx context.Context, client *http.Client) {
	var wg sync.WaitGroup
	for _, m := range p.Members() {
		wg.Go(func() {
			err := p.probe(ctx, client, m)
			if ctx.Err() != nil {
				return
			}
			m.recordCheck(err == nil, errors.Is(err, syscall.ECONNREFUSED), p.opts)
			if now := p.opts.now(); m.ejectionDue(now) {
				m.readmit(err == nil, now)
			}
		})
	}
	wg.Wait()
}

// recordCheck counts a probe. A refused connection marks the member down
// at once: nothing listens there (the process died), so there is no
// flapping to smooth over and waiting for more failures only delays it.
func (m *Member) recordCheck(ok, refused bool, o Options) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.checkFails = 0
		m.checkOKs++
		if m.probing {
			m.probing = false
			m.healthy.Store(true)
			return
		}
		if !m.healthy.Load() && m.checkOKs >= o.HealthyAfter {
			m.healthy.Store(true)
		}
		return
	}
	m.checkOKs = 0
	m.checkFails++
	m.probing = false // down now, and recovers by the usual HealthyAfter rule
	if m.healthy.Load() && (refused || m.checkFails >= o.UnhealthyAfter) {
		m.healthy.Store(false)
	}
}

func (p *Pool) probe(ctx context.Context, client *http.Client, m *Member) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL.JoinPath(p.opts.HealthPath).String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	m.LearnName(resp.Header.Get(HeaderServedBy))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", m.URL, resp.Status)
	}
	return nil
}

// HeaderServedBy is the header in which every clone names itself.
const HeaderServedBy = "X-Served-By"

// MemberStatus is one member as an admin API shows it.
type MemberStatus struct {
	Member     string  `json:"member"`         // host:port, the label of its metrics and spans
	Name       string  `json:"name,omitempty"` // the clone's own name (X-Served-By), once it answered
	URL        string  `json:"url"`
	Source     string  `json:"source"`
	State      string  `json:"state"` // up, down, ejected, draining
	Healthy    bool    `json:"healthy"`
	Ejected    bool    `json:"ejected"`
	Draining   bool    `json:"draining"`
	InFlight   int64   `json:"in_flight"`
	LatencyMS  float64 `json:"latency_ewma_ms"`
	Requests   int64   `json:"requests"`
	Failures   int64   `json:"failures"`
	Ejections  int64   `json:"ejections"`
	EjectedFor string  `json:"ejected_for,omitempty"` // time left, when ejected
}

// PoolStatus is a pool as an admin API shows it.
type PoolStatus struct {
	Name    string         `json:"name"`
	Policy  Policy         `json:"policy"`
	Ready   bool           `json:"ready"`
	Members []MemberStatus `json:"members"`
}

// Status reports the pool and each member.
func (p *Pool) Status() PoolStatus {
	now := p.opts.now()
	st := PoolStatus{Name: p.Name, Policy: p.opts.Policy, Ready: p.Ready(), Members: []MemberStatus{}}
	for _, m := range p.Members() {
		st.Members = append(st.Members, m.status(now))
	}
	return st
}

func (m *Member) status(now time.Time) MemberStatus {
	lat := m.latency(now)
	m.mu.Lock()
	s := MemberStatus{
		Member: m.Label(), Name: m.Name(), URL: m.URL.String(), Source: m.Source,
		Healthy: m.healthy.Load(), Ejected: m.Ejected(), Draining: m.draining.Load(),
		InFlight: m.inFlight.Load(), LatencyMS: float64(int64(lat*1e6)) / 1e3,
		Requests: m.requests, Failures: m.failures, Ejections: m.ejectTotal,
	}
	probing := m.probing
	m.mu.Unlock()
	if until := m.ejectedUntilNano.Load(); until != 0 {
		s.EjectedFor = max(time.Duration(until-now.UnixNano()), 0).Round(time.Millisecond).String()
	}
	switch {
	case s.Draining:
		s.State = "draining"
	case probing:
		s.State = "probing"
	case !s.Healthy:
		s.State = "down"
	case s.Ejected:
		s.State = "ejected"
	default:
		s.State = "up"
	}
	return s
}
