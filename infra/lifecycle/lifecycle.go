// Package lifecycle is the one main() every scaleshop binary shares: a GC
// target sized for small heaps, as many Ps as its CPU quota has cores, run
// until SIGINT or SIGTERM, then exit once, non-zero on error.
package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
)

// RunFunc is a binary's whole life: read config through getenv, start, and
// return when ctx ends, after shutting down in reverse order.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

// GCPercent is every binary's GC target unless GOGC says otherwise. The
// services' live heaps are a few MB of short-lived request garbage, so
// Go's default (collect each time the heap doubles) runs the collector
// many times a second under load, on cores the whole stack shares. At 400
// a heap of 10 MB may grow to 50 MB between collections, and the orders
// pipeline's p99 at 100 orders/s fell by about a third (docs/benchmarks.md).
const GCPercent = 400

// Main calls run with the process environment and exits.
func Main(name string, run RunFunc) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	// A clone with half a core runs one P, not the two Go would give it;
	// telemetry.Setup logs what it runs with. GOMAXPROCS set by hand wins.
	if os.Getenv("GOMAXPROCS") == "" {
		if q, err := cpuquota.Of(0); err == nil {
			if n := cpuquota.GOMAXPROCSFor(q); n > 0 {
				runtime.GOMAXPROCS(n)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
