package catalogclient

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/infra/balancer"
)

// PoolBackends balances over the catalog clones with the same balancer the
// gateway uses (infra/balancer: P2C over a peak-EWMA latency estimate,
// active /readyz checks, passive ejection). Run the pool's CheckHealth.
type PoolBackends struct{ Pool *balancer.Pool }

// NewPoolBackends builds the pool of catalog clones.
func NewPoolBackends(urls []string) (*PoolBackends, error) {
	p, err := balancer.NewPool("catalog", urls, balancer.Options{})
	if err != nil {
		return nil, err
	}
	return &PoolBackends{Pool: p}, nil
}

// Pick implements Backends.
func (b *PoolBackends) Pick(tried []*url.URL) (*url.URL, func(failed bool), error) {
	var exclude []*balancer.Member
	for _, u := range tried {
		if m := b.Pool.Get(u.String()); m != nil {
			exclude = append(exclude, m)
		}
	}
	m, err := b.Pool.Pick(exclude...)
	if err != nil {
		return nil, nil, err
	}
	lease := m.Acquire()
	return m.URL, func(failed bool) {
		if failed {
			lease.Done(balancer.Failure)
		} else {
			lease.Done(balancer.Success)
		}
	}, nil
}

// DNSInterval is how often a dns+http://name:port catalog member is
// re-resolved (a headless Service on Kubernetes): the gateway's default.
const DNSInterval = 5 * time.Second

// Dial is the client both orders binaries use: the shared traced transport,
// a balanced pool over urls (its members' state exported on reg as
// orders_catalog_member_*), and the pool's health checks and DNS
// re-resolution to run until the process ends. urls are fixed member URLs
// or dns+ names, as the gateway takes them.
func Dial(ctx context.Context, urls []string, timeout time.Duration, reg prometheus.Registerer, onDNSErr func(error)) (*Client, func(ctx context.Context), error) {
	static, targets := balancer.SplitMembers(urls)
	backends, err := NewPoolBackends(static)
	if err != nil {
		return nil, nil, err
	}
	watch := backends.Pool.Discover(ctx, targets, DNSInterval, net.DefaultResolver.LookupHost, onDNSErr)
	if err := reg.Register(balancer.NewCollector("orders_catalog", backends.Pool)); err != nil {
		return nil, nil, err
	}
	client := New(backends, NewTransport(64), timeout)
	// Probes go untraced: they are not requests anyone follows.
	run := func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { watch(ctx) })
		backends.Pool.CheckHealth(ctx, &http.Client{})
		wg.Wait()
	}
	return client, run, nil
}
