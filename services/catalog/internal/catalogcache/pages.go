package catalogcache

import (
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// pageCopies are this process's copies of list pages of one generation.
// Every catalog write moves the generation, and a list read always asks
// memcached for the current one first, so a copy is exactly as fresh as the
// page in memcached; only its stock may lag, by the copy's ttl on top of the
// page's own. A copy saves the fetch of the page (kilobytes) from memcached:
// a list hit is one round trip for the generation's few bytes.
//
// The copies are bounded by their bytes; a new generation, or going over
// the bound, drops them all (they are refetched in one round trip each).
type pageCopies struct {
	ttl      time.Duration // 0: keep no copies
	maxBytes int

	mu    sync.RWMutex
	gen   string
	pages map[string]pageCopy
	bytes int
}

type pageCopy struct {
	e       catalog.Encoded
	expires time.Time
}

func newPageCopies(ttl time.Duration, maxBytes int) *pageCopies {
	return &pageCopies{ttl: ttl, maxBytes: maxBytes, pages: map[string]pageCopy{}}
}

// get returns the copy of key under gen, if it has one that is not expired.
func (p *pageCopies) get(gen, key string) (catalog.Encoded, bool) {
	if p.ttl <= 0 {
		return catalog.Encoded{}, false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, ok := p.pages[key]
	if !ok || p.gen != gen || time.Now().After(c.expires) {
		return catalog.Encoded{}, false
	}
	return c.e, true
}

// put keeps a copy of key, a page of generation gen.
func (p *pageCopies) put(gen, key string, e catalog.Encoded) {
	size := len(key) + len(e.ETag) + len(e.Body)
	if p.ttl <= 0 || size > p.maxBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen || p.bytes+size > p.maxBytes {
		p.gen, p.pages, p.bytes = gen, map[string]pageCopy{}, 0
	}
	if old, ok := p.pages[key]; ok {
		p.bytes -= len(key) + len(old.e.ETag) + len(old.e.Body)
	}
	p.pages[key] = pageCopy{e: e, expires: time.Now().Add(p.ttl)}
	p.bytes += size
}
