package balancer

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Resolver looks a host name up; net.DefaultResolver.LookupHost fits.
type Resolver func(ctx context.Context, host string) ([]string, error)

// SyncDNS resolves target ("http://catalog:8081") once and makes the
// pool's members from that name exactly its addresses. This is how clones
// started with `docker compose --scale catalog=3` join: one name, many A
// records. An error leaves the members as they were: a DNS blip must not
// empty a pool.
func (p *Pool) SyncDNS(ctx context.Context, target string, lookup Resolver) error {
	u, err := url.Parse(target)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("pool %s: DNS target %q: want scheme://name:port", p.Name, target)
	}
	addrs, err := lookup(ctx, u.Hostname())
	if err != nil {
		return fmt.Errorf("pool %s: resolve %s: %w", p.Name, u.Hostname(), err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("pool %s: %s resolves to nothing; keeping the members", p.Name, u.Hostname())
	}
	slices.Sort(addrs)
	urls := make([]string, 0, len(addrs))
	for _, a := range addrs {
		urls = append(urls, u.Scheme+"://"+net.JoinHostPort(a, u.Port()))
	}
	return p.Replace("dns:"+u.Hostname(), urls)
}

// WatchDNS calls SyncDNS every interval until ctx ends, reporting errors
// to onErr.
func (p *Pool) WatchDNS(ctx context.Context, target string, interval time.Duration, lookup Resolver, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.SyncDNS(ctx, target, lookup); err != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DNSPrefix marks a member that is a name to re-resolve
// ("dns+http://catalog:8081") rather than one fixed URL.
const DNSPrefix = "dns+"

// SplitMembers separates fixed member URLs from dns+ targets (returned
// without the prefix).
func SplitMembers(members []string) (static, targets []string) {
	for _, m := range members {
		if target, ok := strings.CutPrefix(m, DNSPrefix); ok {
			targets = append(targets, target)
		} else {
			static = append(static, m)
		}
	}
	return static, targets
}

// Discover resolves every target into the pool once, so the first requests
// find members, and returns the loop that re-resolves them all every
// interval until its ctx ends. A failed first resolution goes to onErr and
// the loop keeps trying.
func (p *Pool) Discover(ctx context.Context, targets []string, interval time.Duration, lookup Resolver, onErr func(error)) (watch func(context.Context)) {
	for _, target := range targets {
		if err := p.SyncDNS(ctx, target, lookup); err != nil {
			onErr(err)
		}
	}
	return func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, target := range targets {
			wg.Go(func() { p.WatchDNS(ctx, target, interval, lookup, onErr) })
		}
		wg.Wait()
	}
}
