package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Error kinds, the keys of a report's error table.
const (
	KindTimeout       = "timeout"
	KindRefused       = "connection refused"
	KindReset         = "connection reset"
	KindClosed        = "connection closed early"
	KindPortExhausted = "port exhaustion (EADDRNOTAVAIL)"
	KindOther         = "other transport error"
)

// StatusKind names an HTTP error status: "http 503".
func StatusKind(code int) string { return "http " + strconv.Itoa(code) }

// KindOf maps a transport error to its kind by its value, not its text.
func KindOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return KindPortExhausted
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return KindClosed
	}
	return KindOther
}

// errorTap sits under vegeta's http.Client and keeps the real error value of
// each failed round trip, keyed by vegeta's sequence number, because vegeta
// hands results over with the error flattened to a string.
type errorTap struct {
	next http.RoundTripper
	mu   sync.Mutex
	errs map[string]string // X-Vegeta-Seq -> kind
}

func (t *errorTap) RoundTrip(req *http.Request) (*http.Response, error) {
	seq := req.Header.Get("X-Vegeta-Seq")
	if seq != "" {
		// Bookkeeping headers stay on this side of the wire.
		r := *req
		r.Header = req.Header.Clone()
		r.Header.Del("X-Vegeta-Seq")
		r.Header.Del("X-Vegeta-Attack")
		req = &r
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil && seq != "" {
		kind := KindOf(err)
		// Nothing here cancels a request but the client's timeout, which
		// may show as "request canceled" before its context says so.
		if dl, ok := req.Context().Deadline(); ok && !time.Now().Before(dl) || req.Context().Err() != nil {
			kind = KindTimeout
		}
		t.mu.Lock()
		t.errs[seq] = kind
		t.mu.Unlock()
	}
	return resp, err
}

// take returns and forgets the kind recorded for seq.
func (t *errorTap) take(seq uint64) (string, bool) {
	key := strconv.FormatUint(seq, 10)
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.errs[key]
	if ok {
		delete(t.errs, key)
	}
	return k, ok
}
