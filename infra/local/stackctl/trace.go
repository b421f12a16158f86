package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/scaleshop/scaleshop/infra/traceview"
)

// trace prints one trace from this profile's Jaeger as a waterfall (or
// JSON). A trace id comes from any gateway response's X-Trace-Id header.
// Spans arrive in Jaeger in batches, so a just-finished request is waited
// for briefly rather than reported missing or half.
func (e *environment) trace(ctx context.Context, id string, asJSON bool) error {
	c := &traceview.Client{BaseURL: e.endpoints().JaegerQueryURL}
	deadline := time.Now().Add(5 * time.Second)
	for {
		t, err := c.Get(ctx, id)
		if errors.Is(err, traceview.ErrNotFound) && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if err != nil {
			return err
		}
		// Each process exports its spans on its own schedule: a trace that
		// just ended may still be missing some. Look again once.
		if time.Since(t.Start.Add(t.Duration)) < 2*time.Second {
			time.Sleep(1500 * time.Millisecond)
			if again, err := c.Get(ctx, id); err == nil {
				t = again
			}
		}
		e.outMu.Lock()
		defer e.outMu.Unlock()
		if asJSON {
			return traceview.RenderJSON(e.out, t)
		}
		return traceview.Render(e.out, t, traceview.Options{Color: isTerminal(os.Stdout)})
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
