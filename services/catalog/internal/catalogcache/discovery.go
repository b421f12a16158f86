package catalogcache

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SRVPrefix marks a MEMCACHED_SERVERS entry that names an SRV record to
// re-resolve ("srv+_memcache._tcp.memcached") instead of a fixed host:port.
const SRVPrefix = "srv+"

// LookupSRV looks an SRV name up; net.DefaultResolver.LookupSRV fits.
type LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)

// SyncSRV resolves name (the full "_port._proto.service" record) and makes
// r's servers its targets, as "name:port". A Kubernetes headless Service
// in front of a StatefulSet answers with one stable name per pod
// (memcached-0.memcached.<namespace>.svc...), so the hash follows pods,
// not their IPs. An error or an empty answer keeps the servers as they
// were: a DNS blip must not empty the cache tier. changed reports whether
// the set of servers differs from before.
func SyncSRV(ctx context.Context, r *Rendezvous, name string, lookup LookupSRV) (changed bool, err error) {
	_, records, err := lookup(ctx, "", "", name)
	if err != nil {
		return false, fmt.Errorf("memcached discovery: resolve %s: %w", name, err)
	}
	if len(records) == 0 {
		return false, fmt.Errorf("memcached discovery: %s has no records; keeping %v", name, r.Servers())
	}
	servers := make([]string, 0, len(records))
	for _, rec := range records {
		host := strings.TrimSuffix(rec.Target, ".")
		servers = append(servers, net.JoinHostPort(host, strconv.Itoa(int(rec.Port))))
	}
	slices.Sort(servers)
	servers = slices.Compact(servers)
	if slices.Equal(servers, r.Servers()) {
		return false, nil
	}
	return true, r.SetServers(servers)
}

// WatchSRV calls SyncSRV at once and then every interval until ctx ends,
// telling onChange the new servers and onErr what failed.
func WatchSRV(ctx context.Context, r *Rendezvous, name string, interval time.Duration, lookup LookupSRV,
	onChange func(servers []string), onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		changed, err := SyncSRV(ctx, r, name, lookup)
		switch {
		case err != nil && ctx.Err() == nil:
			onErr(err)
		case changed:
			onChange(r.Servers())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
