package balancer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestSplitMembersSeparatesDNSTargets(t *testing.T) {
	static, targets := SplitMembers([]string{"http://127.0.0.1:8081", "dns+http://catalog:8081", "http://127.0.0.1:8082"})
	if !slices.Equal(static, []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}) {
		t.Errorf("static = %v", static)
	}
	if !slices.Equal(targets, []string{"http://catalog:8081"}) {
		t.Errorf("targets = %v", targets)
	}
}

// headless is a fake resolver for a headless Service: one A record per
// ready pod.
type headless struct {
	mu    sync.Mutex
	addrs []string
	asks  int
}

func (h *headless) set(addrs ...string) { h.mu.Lock(); h.addrs = addrs; h.mu.Unlock() }

func (h *headless) lookup(_ context.Context, host string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asks++
	return slices.Clone(h.addrs), nil
}

func (h *headless) lookups() int { h.mu.Lock(); defer h.mu.Unlock(); return h.asks }

func memberURLs(p *Pool) []string {
	var out []string
	for _, m := range p.Members() {
		out = append(out, m.URL.String())
	}
	slices.Sort(out)
	return out
}

func TestDiscoverFillsThePoolBeforeServingAndFollowsThePods(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewPool("catalog", []string{"http://127.0.0.1:9999"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dns := &headless{}
	dns.set("10.0.0.2", "10.0.0.1")
	watch := p.Discover(ctx, []string{"http://catalog:8081"}, time.Millisecond, dns.lookup, func(err error) { t.Error(err) })
	want := []string{"http://10.0.0.1:8081", "http://10.0.0.2:8081", "http://127.0.0.1:9999"}
	if got := memberURLs(p); !slices.Equal(got, want) {
		t.Fatalf("members before the watch runs = %v, want %v", got, want)
	}
	kept := p.Get("http://10.0.0.1:8081")

	done := make(chan struct{})
	go func() { defer close(done); watch(ctx) }()
	dns.set("10.0.0.1", "10.0.0.3") // one pod replaced
	want = []string{"http://10.0.0.1:8081", "http://10.0.0.3:8081", "http://127.0.0.1:9999"}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(memberURLs(p), want) {
		if time.Now().After(deadline) {
			t.Fatalf("members = %v, want %v", memberURLs(p), want)
		}
		time.Sleep(time.Millisecond)
	}
	if p.Get("http://10.0.0.1:8081") != kept {
		t.Error("a member that stayed in DNS was replaced; it must keep its health and latency state")
	}
	cancel()
	<-done
	if dns.lookups() < 2 {
		t.Errorf("the watch resolved %d times", dns.lookups())
	}
}
