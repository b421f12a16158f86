package catalogcache

import (
	"fmt"
	"hash/fnv"
	"net"
	"strings"
	"sync/atomic"

	"github.com/bradfitz/gomemcache/memcache"
)

// Rendezvous is a gomemcache ServerSelector using rendezvous (highest random
// weight) hashing: each key goes to the server with the highest
// hash(server, key). Removing or losing a server moves only that server's
// keys; gomemcache's default selector (hash mod n) remaps almost every key
// when the list changes. While a node is down its keys simply miss (the
// operation fails fast and is counted) and the other node keeps its hits.
//
// The server list can change while requests run (SetServers, fed by DNS
// discovery on Kubernetes): a key's owner depends only on its own hash and
// the server names, so a node that joins takes about 1/n of the keys and a
// node that leaves gives up only its own.
type Rendezvous struct {
	ring atomic.Pointer[ring]
}

// ring is one immutable server list; a change swaps the whole ring.
type ring struct {
	addrs []net.Addr
	seeds []uint64
}

var _ memcache.ServerSelector = (*Rendezvous)(nil)

// NewRendezvous resolves "host:port" servers.
func NewRendezvous(servers ...string) (*Rendezvous, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("no memcached servers")
	}
	r := &Rendezvous{}
	next := &ring{}
	for _, s := range servers {
		addr, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			return nil, fmt.Errorf("memcached server %q: %w", s, err)
		}
		next.add(addr)
	}
	r.ring.Store(next)
	return r, nil
}

// NewDiscovered returns a selector with no servers yet: every operation
// fails fast with memcache.ErrNoServers (reads then go to Postgres) until
// SetServers gives it some.
func NewDiscovered() *Rendezvous {
	r := &Rendezvous{}
	r.ring.Store(&ring{})
	return r
}

// SetServers makes the selector's servers exactly hostports ("name:port"),
// kept as names: the hash places keys by the name, and gomemcache resolves
// it when it dials. On Kubernetes the names are a StatefulSet's stable pod
// names (memcached-0.memcached...), so a pod that restarts with a new IP
// keeps its keys.
func (r *Rendezvous) SetServers(hostports []string) error {
	next := &ring{}
	for _, hp := range hostports {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return fmt.Errorf("memcached server %q: %w", hp, err)
		}
		next.add(namedAddr(hp))
	}
	r.ring.Store(next)
	return nil
}

// Servers returns the current servers' "host:port".
func (r *Rendezvous) Servers() []string {
	cur := r.ring.Load()
	out := make([]string, len(cur.addrs))
	for i, a := range cur.addrs {
		out[i] = a.String()
	}
	return out
}

func (g *ring) add(addr net.Addr) {
	g.addrs = append(g.addrs, addr)
	g.seeds = append(g.seeds, hash64(addr.String()))
}

// PickServer returns the server that owns key.
func (r *Rendezvous) PickServer(key string) (net.Addr, error) {
	cur := r.ring.Load()
	if len(cur.addrs) == 0 {
		return nil, memcache.ErrNoServers
	}
	return cur.addrs[cur.pick(key)], nil
}

func (g *ring) pick(key string) int {
	k := hash64(hashTag(key))
	best, bestScore := 0, uint64(0)
	for i, seed := range g.seeds {
		if score := mix64(k ^ seed); i == 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// Each calls f for every server (GetMulti, FlushAll, Ping).
func (r *Rendezvous) Each(f func(net.Addr) error) error {
	for _, a := range r.ring.Load().addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// Owner returns the "host:port" that holds key, or "" while there is no
// server; tests and spans use it.
func (r *Rendezvous) Owner(key string) string {
	cur := r.ring.Load()
	if len(cur.addrs) == 0 {
		return ""
	}
	return cur.addrs[cur.pick(key)].String()
}

// namedAddr is a TCP address kept as "name:port"; gomemcache dials
// Network() and String(), so the name is resolved at connect time.
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }

// hashTag is the part of key that places it: the text inside its first
// "{...}" when that is not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// mix64 is the splitmix64 finalizer: FNV alone spreads similar keys poorly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
