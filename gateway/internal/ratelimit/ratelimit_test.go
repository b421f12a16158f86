package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestAllowAndHeaders(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(2, 3) // 2/s, bursts of 3
	l.now = func() time.Time { return now }
	steps := []struct {
		advance                        time.Duration
		key                            string
		allowed                        bool
		limit, remaining, reset, retry string
	}{
		{0, "user:alice", true, "2", "2", "1", ""},
		{0, "user:alice", true, "2", "1", "1", ""},
		{0, "user:alice", true, "2", "0", "2", ""},
		{0, "user:alice", false, "2", "0", "2", "1"},
		{0, "user:bob", true, "2", "2", "1", ""}, // another key has its own bucket
		{500 * time.Millisecond, "user:alice", true, "2", "0", "2", ""},
		{2 * time.Second, "user:alice", true, "2", "2", "1", ""},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		d := l.Allow(s.key)
		h := http.Header{}
		d.SetHeaders(h)
		got := []string{h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"), h.Get("Retry-After")}
		want := []string{s.limit, s.remaining, s.reset, s.retry}
		if d.Allowed != s.allowed || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
			t.Errorf("step %d (%s): allowed=%v headers %q; want allowed=%v %q", i, s.key, d.Allowed, got, s.allowed, want)
		}
		// The limit is the policy (2 per second), not the burst (3).
		if p := h.Get("RateLimit-Policy"); p != "2;w=1;burst=3" {
			t.Errorf("step %d: RateLimit-Policy %q, want 2;w=1;burst=3", i, p)
		}
	}
}

func TestNoLimit(t *testing.T) {
	l := New(0, 10)
	for range 1000 {
		d := l.Allow("ip:127.0.0.1")
		if !d.Allowed {
			t.Fatal("a disabled limiter denied")
		}
		h := http.Header{}
		d.SetHeaders(h)
		if len(h) != 0 {
			t.Fatalf("a disabled limiter set headers %v", h)
		}
	}
}
