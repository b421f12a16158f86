package main

import (
	"context"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// startInOrder launches every component as soon as its dependencies are up,
// so independent ones (the four Postgres clusters, memcached, Kafka) come up
// in parallel.
//
// A component for which later(name) is true, whose binary is still being
// built (Jaeger on a first run), is not waited for: it and everything that
// depends on it launch in the background under bg, once their
// dependencies are up, and late reports each one's result. startInOrder
// returns when all the others are up, or with the first error among them,
// and lists the components it left to the background (deferred). The
// returned wait blocks until the background launches have ended; bg ending
// cancels them.
func startInOrder(ctx, bg context.Context, comps []topology.Component,
	launch func(context.Context, topology.Component) error,
	later func(name string) bool, late func(name string, err error)) (deferred []string, wait func(), err error) {
	ready := map[string]chan struct{}{}
	inBackground := map[string]bool{}
	for _, c := range comps { // in dependency order: a dependency is decided first
		ready[c.Name] = make(chan struct{})
		inBackground[c.Name] = later(c.Name)
		for _, d := range c.DependsOn {
			inBackground[c.Name] = inBackground[c.Name] || inBackground[d]
		}
		if inBackground[c.Name] {
			deferred = append(deferred, c.Name)
		}
	}
	await := func(ctx context.Context, c topology.Component) error {
		for _, d := range c.DependsOn {
			select {
			case <-ready[d]:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := launch(ctx, c); err != nil {
			return err
		}
		close(ready[c.Name])
		return nil
	}

	var background sync.WaitGroup
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range comps {
		if inBackground[c.Name] {
			background.Go(func() { late(c.Name, await(bg, c)) })
			continue
		}
		g.Go(func() error { return await(gctx, c) })
	}
	return deferred, background.Wait, g.Wait()
}
