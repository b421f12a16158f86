package catalogcache

import (
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

func TestPageCopiesAreOfOneGenerationBoundedAndExpire(t *testing.T) {
	page := catalog.Encoded{Body: make([]byte, 100), ETag: "e"}
	p := newPageCopies(time.Hour, 250)
	p.put("1", "a", page)
	if _, ok := p.get("1", "a"); !ok {
		t.Fatal("a copy just kept is missing")
	}
	if _, ok := p.get("2", "a"); ok {
		t.Error("a copy served a newer generation")
	}
	p.put("1", "b", page)
	p.put("1", "c", page) // over 250 bytes: all dropped, c kept
	if _, ok := p.get("1", "a"); ok {
		t.Error("copies went over their byte bound")
	}
	if _, ok := p.get("1", "c"); !ok {
		t.Error("the copy that overflowed the bound was not kept")
	}
	p.put("2", "d", page) // a new generation drops the old one's copies
	if _, ok := p.get("1", "c"); ok {
		t.Error("a copy of an old generation survived a new one")
	}

	short := newPageCopies(time.Millisecond, 1<<20)
	short.put("1", "a", page)
	deadline := time.Now().Add(time.Second)
	for {
		if _, ok := short.get("1", "a"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a copy outlived its ttl")
		}
		time.Sleep(time.Millisecond)
	}

	off := newPageCopies(0, 1<<20)
	off.put("1", "a", page)
	if _, ok := off.get("1", "a"); ok {
		t.Error("ttl 0 kept a copy")
	}
}
