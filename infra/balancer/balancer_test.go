package balancer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake time source tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestPool(t *testing.T, policy Policy, n int, clk *clock) *Pool {
	t.Helper()
	var urls []string
	for i := range n {
		urls = append(urls, fmt.Sprintf("http://m%d:80", i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p, err := NewPool("test", urls, Options{Policy: policy, now: clk.now, rand: rng.IntN})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundRobinIsExactAndSkipsMembersOutOfService(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 3, clk)
	counts := map[string]int{}
	for range 300 {
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		counts[m.URL.Host]++
	}
	for host, n := range counts {
		if n != 100 {
			t.Errorf("%s got %d of 300, want exactly 100", host, n)
		}
	}

	out := map[string]func(m *Member){
		"down":     func(m *Member) { m.healthy.Store(false) },
		"draining": func(m *Member) { m.draining.Store(true) },
		"ejected":  func(m *Member) { m.ejectedUntilNano.Store(clk.now().Add(time.Hour).UnixNano()) },
	}
	for name, takeOut := range out {
		t.Run(name, func(t *testing.T) {
			p := newTestPool(t, RoundRobin, 3, clk)
			takeOut(p.Members()[1])
			for range 30 {
				if m, _ := p.Pick(); m == p.Members()[1] {
					t.Fatalf("picked a %s member", name)
				}
			}
			for _, m := range p.Members() {
				takeOut(m)
			}
			if _, err := p.Pick(); !errors.Is(err, ErrNoHealthyMember) {
				t.Fatalf("every member %s: want ErrNoHealthyMember, got %v", name, err)
			}
		})
	}
}

func TestPickExcludesTriedMembersButFallsBackToThem(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	for _, policy := range Policies {
		t.Run(string(policy), func(t *testing.T) {
			p := newTestPool(t, policy, 2, clk)
			a, b := p.Members()[0], p.Members()[1]
			for range 20 {
				if m, _ := p.Pick(a); m != b {
					t.Fatalf("Pick(excluding a) = %s", m.URL)
				}
			}
			b.healthy.Store(false)
			if m, err := p.Pick(a); err != nil || m != a {
				t.Fatalf("only a is left: Pick(excluding a) = %v, %v; want a (better than a 503)", m, err)
			}
		})
	}
}

// completion is a simulated request finishing at a time.
type completion struct {
	at    time.Time
	lease *Lease
}
type completions []completion

func (c completions) Len() int           { return len(c) }
func (c completions) Less(i, j int) bool { return c[i].at.Before(c[j].at) }
func (c completions) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)        { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// simulate sends n requests at a fixed rate to a pool whose members answer
// in the given latencies, on a fake clock, and returns each member's share.
func simulate(t *testing.T, policy Policy, latencies []time.Duration, rate float64, n int) []float64 {
	t.Helper()
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, policy, len(latencies), clk)
	lat := map[*Member]time.Duration{}
	for i, m := range p.Members() {
		lat[m] = latencies[i]
	}
	gap := time.Duration(float64(time.Second) / rate)
	pending := &completions{}
	counts := make([]int, len(latencies))
	start := clk.now()
	for i := range n {
		arrival := start.Add(time.Duration(i) * gap)
		for pending.Len() > 0 && !(*pending)[0].at.After(arrival) {
			c := heap.Pop(pending).(completion)
			clk.t = c.at
			c.lease.Done(Success)
		}
		clk.t = arrival
		m, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		for j, mm := range p.Members() {
			if mm == m {
				counts[j]++
			}
		}
		heap.Push(pending, completion{at: arrival.Add(lat[m]), lease: m.Acquire()})
	}
	shares := make([]float64, len(counts))
	for i, c := range counts {
		shares[i] = float64(c) / float64(n)
	}
	return shares
}

func TestPolicyShareOfASlowMember(t *testing.T) {
	fast, slow := time.Millisecond, 10*time.Millisecond
	for _, tc := range []struct {
		policy       Policy
		rate         float64
		maxSlowShare float64
		minSlowShare float64
		latencies    []time.Duration
		description  string
	}{
		{RoundRobin, 500, 0.5, 0.5, []time.Duration{fast, slow}, "round robin ignores speed"},
		{LeastRequest, 2000, 0.45, 0.01, []time.Duration{fast, slow}, "fewer in flight wins, so the slow one gets less"},
		{P2CEWMA, 500, 0.10, 0, []time.Duration{fast, slow}, "10x slower gets under 10%"},
		{P2CEWMA, 2000, 0.10, 0, []time.Duration{fast, slow}, "10x slower gets under 10% at a higher rate"},
		{P2CEWMA, 2000, 0.10, 0, []time.Duration{fast, fast, slow}, "three members"},
		{P2CEWMA, 2000, 0.55, 0.45, []time.Duration{fast, fast}, "equal members share evenly"},
	} {
		t.Run(string(tc.policy)+"/"+tc.description, func(t *testing.T) {
			shares := simulate(t, tc.policy, tc.latencies, tc.rate, 20000)
			t.Logf("shares %.3f", shares)
			last := shares[len(shares)-1]
			if last > tc.maxSlowShare || last < tc.minSlowShare {
				t.Errorf("last member's share = %.3f, want within [%.2f, %.2f] (all %.3f)", last, tc.minSlowShare, tc.maxSlowShare, shares)
			}
		})
	}
}

func TestNewMemberIsNotFloodedBeforeItsFirstAnswer(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, P2CEWMA, 1, clk)
	old := p.Members()[0]
	l := old.Acquire()
	clk.advance(5 * time.Millisecond)
	l.Done(Success)
	added, err := p.Add("http://new:80", SourceAdmin)
	if err != nil {
		t.Fatal(err)
	}
	added.recordCheck(true, false, p.opts) // its first probe passed
	first, _ := p.Pick()
	if first != added {
		t.Fatalf("an idle new member should be tried first")
	}
	busy := first.Acquire()
	defer busy.Done(Dropped)
	for range 10 {
		if m, _ := p.Pick(); m == added {
			t.Fatal("picked the new member again before its first answer")
		}
	}
}

func TestPassiveEjectionBacksOffAndProbesBackIn(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 2, clk)
	bad := p.Members()[0]
	fail := func(n int) {
		for range n {
			bad.Acquire().Done(Failure)
		}
	}
	fail(4)
	if bad.Ejected() {
		t.Fatal("ejected after 4 failures; EjectAfter is 5")
	}
	bad.Acquire().Done(Success) // a success resets the count
	fail(4)
	if bad.Ejected() {
		t.Fatal("the success in between should have reset the count")
	}
	fail(1)
	if !bad.Ejected() {
		t.Fatal("not ejected after 5 consecutive failures")
	}
	for range 10 {
		if m, _ := p.Pick(); m == bad {
			t.Fatal("picked an ejected member")
		}
	}

	// Each ejection lasts twice the one before: 1s, then 2s, then 4s.
	for i, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		clk.advance(backoff - time.Millisecond)
		if bad.ejectionDue(clk.now()) {
			t.Fatalf("ejection %d over before %s", i+1, backoff)
		}
		clk.advance(time.Millisecond)
		if !bad.ejectionDue(clk.now()) {
			t.Fatalf("ejection %d not over after %s", i+1, backoff)
		}
		if !bad.Ejected() {
			t.Fatal("an expired ejection still needs a good probe")
		}
		bad.readmit(false, clk.now()) // the probe fails: out again, for longer
	}
	clk.advance(8 * time.Second)
	bad.readmit(true, clk.now())
	if bad.Ejected() {
		t.Fatal("a good probe should let the member back in")
	}
	if st := bad.status(clk.now()); st.Ejections != 4 || st.State != "up" {
		t.Errorf("status = %+v, want 4 ejections and state up", st)
	}
}

func TestTheLastMemberInServiceIsNeverEjected(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 2, clk)
	a, b := p.Members()[0], p.Members()[1]
	for range 5 {
		a.Acquire().Done(Failure)
	}
	for range 50 {
		b.Acquire().Done(Failure)
	}
	if !a.Ejected() || b.Ejected() {
		t.Fatalf("ejected a=%v b=%v; want a only: b is the last one left", a.Ejected(), b.Ejected())
	}
}

func TestRetryBudget(t *testing.T) {
	for _, tc := range []struct {
		name          string
		ratio         float64
		min, requests int
		wantRetries   int
	}{
		{"20% of 10 requests", 0.2, 0, 10, 2},
		{"20% of 100 requests", 0.2, 0, 100, 20},
		{"no requests, no minimum", 0.2, 0, 0, 0},
		{"a minimum lets a quiet pool retry", 0.2, 3, 1, 3},
		{"ratio 0 with a minimum", 0, 2, 50, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			b := NewRetryBudget(tc.ratio, tc.min, 10*time.Second)
			b.now = clk.now
			for range tc.requests {
				b.Request()
			}
			got := 0
			for b.TryRetry() {
				got++
				if got > 1000 {
					break
				}
			}
			if got != tc.wantRetries {
				t.Errorf("retries allowed = %d, want %d", got, tc.wantRetries)
			}
		})
	}
}

func TestRetryBudgetForgetsOldRequests(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	b := NewRetryBudget(0.2, 0, 10*time.Second)
	b.now = clk.now
	for range 10 {
		b.Request()
	}
	clk.advance(5 * time.Second)
	if !b.TryRetry() {
		t.Fatal("requests 5s ago are within the 10s window")
	}
	clk.advance(6 * time.Second)
	if b.TryRetry() {
		t.Fatal("requests 11s ago are outside the window")
	}
}

func TestActiveHealthChecksNeedConsecutiveResults(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("probed %s", r.URL.Path)
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	p, err := NewPool("test", []string{srv.URL}, Options{UnhealthyAfter: 3, HealthyAfter: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Members()[0]
	ctx := context.Background()
	steps := []struct {
		status      int
		wantHealthy bool
	}{
		{503, true}, {503, true}, {503, false}, // 3 failures to go down
		{200, false}, {503, false}, {200, false}, {200, true}, // 2 in a row to come back
	}
	for i, s := range steps {
		status.Store(int32(s.status))
		p.checkOnce(ctx, srv.Client())
		if m.Healthy() != s.wantHealthy {
			t.Fatalf("after check %d (%d): healthy = %v, want %v", i+1, s.status, m.Healthy(), s.wantHealthy)
		}
	}
}

func TestProbeReadmitsAnEjectedMember(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	clk := &clock{t: time.Unix(1000, 0)}
	p, err := NewPool("test", []string{srv.URL, "http://other:80"}, Options{now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Members()[0]
	for range 5 {
		m.Acquire().Done(Failure)
	}
	p.checkOnce(context.Background(), srv.Client())
	if !m.Ejected() {
		t.Fatal("a probe before the ejection time is up must not readmit")
	}
	clk.advance(time.Second)
	p.checkOnce(context.Background(), srv.Client())
	if m.Ejected() {
		t.Fatal("a good probe after the ejection time should readmit")
	}
}

func TestMembershipChanges(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 2, clk)
	if _, err := p.Add("http://m2:80", SourceAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add("http://m2:80", SourceAdmin); err != nil || len(p.Members()) != 3 {
		t.Fatalf("adding twice should keep one member: %d, %v", len(p.Members()), err)
	}
	for _, bad := range []string{"m3:80", "ftp://m3", "http://m3:80/path", "http://"} {
		if _, err := p.Add(bad, SourceAdmin); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
	m, err := p.Drain("http://m2:80")
	if err != nil || !m.Draining() {
		t.Fatalf("drain: %v", err)
	}
	lease := m.Acquire() // in flight before the drain: it finishes normally
	if err := p.Remove("http://m2:80"); err != nil {
		t.Fatal(err)
	}
	lease.Done(Success)
	if len(p.Members()) != 2 || p.Get("http://m2:80") != nil {
		t.Fatal("member not removed")
	}
	if err := p.Remove("http://m2:80"); err == nil {
		t.Fatal("removing a missing member should fail")
	}
}

func TestSyncDNSKeepsStateAndSurvivesErrors(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 1, clk)
	answers := map[string][]string{"catalog": {"10.0.0.2", "10.0.0.1"}}
	lookup := func(_ context.Context, host string) ([]string, error) {
		if a, ok := answers[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	ctx := context.Background()
	if err := p.SyncDNS(ctx, "http://catalog:8081", lookup); err != nil {
		t.Fatal(err)
	}
	kept := p.Get("http://10.0.0.1:8081")
	if len(p.Members()) != 3 || kept == nil {
		t.Fatalf("members after first sync: %d", len(p.Members()))
	}
	answers["catalog"] = []string{"10.0.0.1", "10.0.0.3"} // scaled: .2 went, .3 came
	if err := p.SyncDNS(ctx, "http://catalog:8081", lookup); err != nil {
		t.Fatal(err)
	}
	if p.Get("http://10.0.0.2:8081") != nil || p.Get("http://10.0.0.3:8081") == nil || p.Get("http://10.0.0.1:8081") != kept {
		t.Fatal("re-resolution should add .3, drop .2 and keep .1 as it was")
	}
	if p.Get("http://m0:80") == nil {
		t.Fatal("re-resolution must not touch members from config")
	}
	delete(answers, "catalog")
	if err := p.SyncDNS(ctx, "http://catalog:8081", lookup); err == nil || len(p.Members()) != 3 {
		t.Fatalf("a failed lookup should report and keep members: %v, %d", err, len(p.Members()))
	}
}

func TestUnknownPolicyIsRejected(t *testing.T) {
	if _, err := NewPool("x", nil, Options{Policy: "random"}); err == nil {
		t.Fatal("want an error")
	}
}

func TestAnUnreachableMemberIsEjectedAtOnce(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 2, clk)
	a, b := p.Members()[0], p.Members()[1]
	a.Acquire().Done(Unreachable)
	if !a.Ejected() {
		t.Fatal("a refused connection should eject at once")
	}
	b.Acquire().Done(Unreachable)
	if b.Ejected() {
		t.Fatal("the last member in service must stay")
	}
}

func TestARefusedProbeMarksAMemberDownAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // a clone whose process is gone: connections are refused
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()

	p, err := NewPool("catalog", []string{dead, failing.URL}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.checkOnce(context.Background(), &http.Client{})
	state := map[string]bool{}
	for _, m := range p.Members() {
		state[m.URL.String()] = m.Healthy()
	}
	if state[dead] {
		t.Error("a member that refuses connections is still healthy after one probe")
	}
	if !state[failing.URL] {
		t.Error("one failed probe (503) marked a member down; it takes UnhealthyAfter (2)")
	}
	p.checkOnce(context.Background(), &http.Client{})
	if m := p.Get(failing.URL); m == nil || m.Healthy() {
		t.Error("two failed probes in a row did not mark the member down")
	}
}

// TestAMemberAddedAtRuntimeWaitsForItsFirstProbe: an operator's new member
// takes no request until a probe has passed (a typo'd address or a clone
// still starting would otherwise fail real requests), and a failed first
// probe keeps it down until HealthyAfter probes pass.
func TestAMemberAddedAtRuntimeWaitsForItsFirstProbe(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	p := newTestPool(t, RoundRobin, 1, clk)
	added, err := p.Add("http://new:80", SourceAdmin)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if m, _ := p.Pick(); m == added {
			t.Fatal("a member added at runtime was picked before any probe passed")
		}
	}
	if st := added.status(clk.now()); st.State != "probing" || st.Healthy {
		t.Fatalf("status %+v, want probing and not healthy", st)
	}
	added.recordCheck(true, false, p.opts)
	picked := false
	for range 10 {
		if m, _ := p.Pick(); m == added {
			picked = true
		}
	}
	if !picked || !added.Healthy() {
		t.Fatal("a member whose first probe passed takes no traffic")
	}

	failed, _ := p.Add("http://typo:80", SourceAdmin)
	failed.recordCheck(false, true, p.opts)
	failed.recordCheck(true, false, p.opts)
	if p.opts.HealthyAfter > 1 && failed.Healthy() {
		t.Fatal("a member whose first probe failed came up after one good probe")
	}
}
