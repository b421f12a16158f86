package engine

import (
	"net/http"
	"strings"
	"testing"
)

type lastRequest struct{ got *http.Request }

func (l *lastRequest) RoundTrip(r *http.Request) (*http.Response, error) {
	l.got = r
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

func TestSampledRootsTracesAtItsRatio(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		flags string
	}{{0, "-00"}, {1, "-01"}} {
		next := &lastRequest{}
		req, _ := http.NewRequest(http.MethodGet, "http://scaleshop.test/", nil)
		if _, err := (Sampled{Next: next, Ratio: c.ratio}).RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		tp := next.got.Header.Get("Traceparent")
		if len(tp) != 55 || !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, c.flags) {
			t.Errorf("ratio %g: traceparent %q, want version 00 ending %s", c.ratio, tp, c.flags)
		}
		if req.Header.Get("Traceparent") != "" {
			t.Errorf("ratio %g: the caller's request was changed", c.ratio)
		}
	}
	next := &lastRequest{}
	req, _ := http.NewRequest(http.MethodGet, "http://scaleshop.test/", nil)
	req.Header.Set("Traceparent", "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01")
	_, _ = (Sampled{Next: next, Ratio: 0}).RoundTrip(req)
	if got := next.got.Header.Get("Traceparent"); got != req.Header.Get("Traceparent") {
		t.Errorf("a request's own trace context was replaced: %q", got)
	}
	sampled := 0
	for range 2000 {
		if strings.HasSuffix(TraceParent(0.25), "-01") {
			sampled++
		}
	}
	if sampled < 400 || sampled > 600 {
		t.Errorf("%d of 2000 sampled at 0.25", sampled)
	}
}
