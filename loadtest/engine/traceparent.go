package engine

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// TraceParent starts a new W3C trace context (version 00) sampled with
// probability ratio. A generator that sends it roots the request's trace,
// and the stack's parent-based samplers follow its flag, so one ratio holds
// for every tier of a load test whatever the stack's own ratio is.
func TraceParent(ratio float64) string {
	var ids [24]byte // trace id (16), parent span id (8); never all zero
	for i := 0; i < len(ids); i += 8 {
		binary.LittleEndian.PutUint64(ids[i:], rand.Uint64()|1)
	}
	flags := "00"
	if rand.Float64() < ratio {
		flags = "01"
	}
	return "00-" + hex.EncodeToString(ids[:16]) + "-" + hex.EncodeToString(ids[16:]) + "-" + flags
}

// Sampled is a RoundTripper that gives every request without a
// Traceparent one of TraceParent(Ratio).
type Sampled struct {
	Next  http.RoundTripper
	Ratio float64
}

func (s Sampled) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Traceparent") == "" {
		out := *r // a RoundTripper must not change the caller's request
		out.Header = r.Header.Clone()
		out.Header.Set("Traceparent", TraceParent(s.Ratio))
		r = &out
	}
	return s.Next.RoundTrip(r)
}
