// Package lifecycle is the one main() every scaleshop binary shares: run
// until SIGINT or SIGTERM, then exit once, non-zero on error.
package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// RunFunc is a binary's whole life: read config through getenv, start, and
// return when ctx ends, after shutting down in reverse order.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

// Main calls run with the process environment and exits.
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
