package balancer

import (
	"errors"
	"testing"
)

func TestRoundRobinSkipsUnhealthy(t *testing.T) {
	p, err := NewPool("catalog", []string{"http://a:1", "http://b:2", "http://c:3"})
	if err != nil {
		t.Fatal(err)
	}
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

	p.Members()[1].healthy.Store(false)
	for range 10 {
		m, _ := p.Pick()
		if m.URL.Host == "b:2" {
			t.Fatal("picked an unhealthy member")
		}
	}
	for _, m := range p.Members() {
		m.healthy.Store(false)
	}
	if _, err := p.Pick(); !errors.Is(err, ErrNoHealthyMember) {
		t.Fatalf("want ErrNoHealthyMember, got %v", err)
	}
}

func TestNewPoolRejectsBadURL(t *testing.T) {
	if _, err := NewPool("x", []string{"not a url"}); err == nil {
		t.Fatal("want an error")
	}
}
