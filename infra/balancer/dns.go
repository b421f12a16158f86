package balancer

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
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
