// Package lifecycle is the one main() every scaleshop binary shares: a GC
// target sized for small heaps, run until SIGINT or SIGTERM, then exit
// once, non-zero on error.
package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
