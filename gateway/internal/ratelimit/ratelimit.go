// Package ratelimit limits requests per key (a customer id, or the client
// IP for anonymous callers) with token buckets from golang.org/x/time/rate,
// and describes the limit in RateLimit-* headers.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter holds one token bucket per key: Rate requests a second, bursts
// up to Burst.
type Limiter struct {
	rate    rate.Limit
	burst   int
	now     func() time.Time
	buckets sync.Map // key -> *bucket
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen atomic.Int64 // unix nanos, for the sweep
}

// New returns a limiter; perSecond <= 0 means no limit (New returns nil,
// and a nil *Limiter allows everything).
func New(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: max(burst, 1), now: time.Now}
}

// Decision is the outcome for one request.
type Decision struct {
	Allowed    bool
	Limit      int // the policy's quota: requests per one-second window (the bucket's refill rate)
	Burst      int // the bucket size: how far a client may run ahead of Limit
	Remaining  int // whole tokens left
	Reset      int // seconds until the bucket is full again
	RetryAfter int // seconds until one token, when not allowed
}

// Allow takes a token from key's bucket.
func (l *Limiter) Allow(key string) Decision {
	if l == nil {
		return Decision{Allowed: true}
	}
	now := l.now()
	b := l.bucket(key, now)
	ok := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	d := Decision{
		Allowed:   ok,
		Limit:     max(int(math.Round(float64(l.rate))), 1),
		Burst:     l.burst,
		Remaining: max(int(math.Floor(tokens)), 0),
		Reset:     int(math.Ceil((float64(l.burst) - tokens) / float64(l.rate))),
	}
	if !ok {
		d.RetryAfter = max(int(math.Ceil((1-tokens)/float64(l.rate))), 1)
	}
	return d
}

func (l *Limiter) bucket(key string, now time.Time) *bucket {
	v, ok := l.buckets.Load(key)
	if !ok {
		v, _ = l.buckets.LoadOrStore(key, &bucket{lim: rate.NewLimiter(l.rate, l.burst)})
	}
	b := v.(*bucket)
	b.lastSeen.Store(now.UnixNano())
	return b
}

// SetHeaders writes the RateLimit-Limit, -Policy, -Remaining and -Reset
// headers of the IETF httpapi RateLimit header fields draft and, when
// denied, Retry-After. The limit is the documented policy, requests per
// second; the policy adds its window (w=1 s) and the burst a token bucket
// allows on top, so a client sees "1000;w=1;burst=2000", not the burst
// alone passed off as the limit.
func (d Decision) SetHeaders(h http.Header) {
	if d.Limit == 0 {
		return
	}
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=1;burst=%d", d.Limit, d.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(d.Reset))
	if !d.Allowed {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
}

// Sweep forgets buckets idle for longer than idle, every idle, until ctx
// ends, so a stream of new client IPs cannot grow memory without bound.
// A forgotten bucket was full anyway: an idle bucket refills.
func (l *Limiter) Sweep(ctx context.Context, idle time.Duration) {
	if l == nil {
		return
	}
	t := time.NewTicker(idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := l.now().Add(-idle).UnixNano()
		l.buckets.Range(func(k, v any) bool {
			if v.(*bucket).lastSeen.Load() < cutoff {
				l.buckets.Delete(k)
			}
			return true
		})
	}
}
