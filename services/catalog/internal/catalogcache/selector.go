package catalogcache

import (
	"fmt"
	"hash/fnv"
	"net"
	"strings"

	"github.com/bradfitz/gomemcache/memcache"
)

// Rendezvous is a gomemcache ServerSelector using rendezvous (highest random
// weight) hashing: each key goes to the server with the highest
// hash(server, key). Removing or losing a server moves only that server's
// keys; gomemcache's default selector (hash mod n) remaps almost every key
// when the list changes. While a node is down its keys simply miss (the
// operation fails fast and is counted) and the other node keeps its hits.
type Rendezvous struct {
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
	for _, s := range servers {
		addr, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			return nil, fmt.Errorf("memcached server %q: %w", s, err)
		}
		r.addrs = append(r.addrs, addr)
		r.seeds = append(r.seeds, hash64(addr.String()))
	}
	return r, nil
}

// PickServer returns the server that owns key.
func (r *Rendezvous) PickServer(key string) (net.Addr, error) {
	return r.addrs[r.pick(key)], nil
}

func (r *Rendezvous) pick(key string) int {
	k := hash64(hashTag(key))
	best, bestScore := 0, uint64(0)
	for i, seed := range r.seeds {
		if score := mix64(k ^ seed); i == 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// Each calls f for every server (GetMulti, FlushAll, Ping).
func (r *Rendezvous) Each(f func(net.Addr) error) error {
	for _, a := range r.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// Owner returns the "host:port" that holds key; tests and spans use it.
func (r *Rendezvous) Owner(key string) string { return r.addrs[r.pick(key)].String() }

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
