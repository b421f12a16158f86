package balancer

import (
	"sync"
	"time"
)

// RetryBudget caps retries at a fraction of recent requests, so that when
// every member is struggling, retries cannot multiply the load that made
// them struggle. It counts over a sliding window of one-second buckets.
type RetryBudget struct {
	ratio   float64
	min     int // retries always allowed per window, so a quiet pool can retry
	now     func() time.Time
	mu      sync.Mutex
	buckets []budgetBucket
}

type budgetBucket struct {
	second            int64
	requests, retries int
}

// NewRetryBudget allows retries ≤ ratio × requests + minRetries over window.
func NewRetryBudget(ratio float64, minRetries int, window time.Duration) *RetryBudget {
	return &RetryBudget{
		ratio:   ratio,
		min:     minRetries,
		now:     time.Now,
		buckets: make([]budgetBucket, max(int(window/time.Second), 1)),
	}
}

// bucket returns the current second's bucket, clearing it if it is stale.
func (b *RetryBudget) bucket() *budgetBucket {
	sec := b.now().Unix()
	bk := &b.buckets[sec%int64(len(b.buckets))]
	if bk.second != sec {
		*bk = budgetBucket{second: sec}
	}
	return bk
}

// Request records one original (not retried) request.
func (b *RetryBudget) Request() {
	b.mu.Lock()
	b.bucket().requests++
	b.mu.Unlock()
}

// TryRetry reports whether one more retry fits, and if so records it.
func (b *RetryBudget) TryRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.bucket()
	oldest := cur.second - int64(len(b.buckets)) + 1
	requests, retries := 0, 0
	for _, bk := range b.buckets {
		if bk.second >= oldest {
			requests += bk.requests
			retries += bk.retries
		}
	}
	if float64(retries+1) > b.ratio*float64(requests)+float64(b.min) {
		return false
	}
	cur.retries++
	return true
}
