// Package overview builds the live picture of the stack the console draws:
// every process with its health, each clone's share of the gateway's
// traffic, latency estimate and CPU quota, and the lag on the replication
// and Kafka edges. A Snapshot is taken from the sources in parallel, each
// source with its own deadline, so one slow or missing source blanks its own
// numbers and nothing else.
package overview

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

// The sources a snapshot reads, each declared as the little it needs.
type (
	manifestReader func() (*topology.Manifest, error)
	prober         interface {
		Probe(ctx context.Context, c topology.ManifestComponent) sources.Health
		ProbeURL(ctx context.Context, base string) sources.Health
	}
	backendReader interface {
		Backends(ctx context.Context) (map[string]sources.Pool, error)
	}
	targetReader interface {
		Targets(ctx context.Context) ([]sources.Target, error)
	}
	runningReader interface {
		Running(ctx context.Context) (map[string]bool, error)
	}
	instantQuerier interface {
		Instant(ctx context.Context, query string) ([]sources.Sample, error)
	}
)

// Queries behind the overview's edges (recording rules from
// infra/local/prometheus/rules.yml).
const (
	QueryReplicaLagSeconds = `job:catalog_replica_lag_seconds:max`
	QueryReplicaLagBytes   = `job:catalog_replica_lag_bytes:max`
	QueryConsumerLag       = `job:orders_consumer_lag:sum`
	QueryOutboxBacklog     = `job:orders_outbox_backlog:sum`
	QueryWorkerShare       = `instance:orders_worker_messages:share10s`
)

// Builder takes snapshots. Metrics and Running may be nil: without
// Prometheus the edges have no numbers, without a supervisor (compose) no
// component is known to be stopped on purpose. Without a Manifest (a
// Kubernetes cluster, where the console reaches no pod but the gateway's,
// Prometheus and Jaeger) the components are Prometheus's Targets, and
// Probe is not used.
type Builder struct {
	Manifest manifestReader
	Targets  targetReader
	Probe    prober
	Gateway  backendReader
	Running  runningReader
	Metrics  instantQuerier
	// JaegerBuild reports Jaeger's background build on a first run; nil
	// when the stack has none to report.
	JaegerBuild func() *sources.JaegerBuild
	// ShareWindow is how far back a clone's share of requests is counted.
	ShareWindow time.Duration
	Now         func() time.Time

	mu      sync.Mutex
	history map[string][]count // member URL -> request counts seen

	latestMu sync.Mutex
	latest   *Snapshot
}

type count struct {
	at       time.Time
	requests int64
}

// Snapshot is the stack at one instant.
type Snapshot struct {
	Taken time.Time
	// Nodes in topology order, then the clones scale-out added.
	Nodes []*Node
	// Lags on the edges; nil when unknown.
	ReplicaLagSeconds *float64
	ReplicaLagBytes   *float64
	ConsumerLag       *float64
	OutboxBacklog     *float64
	// Problems says which sources did not answer.
	Problems []string
}

// Node is one process.
type Node struct {
	Name   string
	Kind   string // topology kind, or the binary for services
	Addr   string
	State  string // up, degraded, down, building
	Detail string
	Clone  *Clone // set for a clone in a gateway pool, and for workers
}

// Clone is what the balancer knows of one member.
type Clone struct {
	Pool         string
	URL          string
	GatewayState string   // the gateway's view: up, down, ejected, draining
	Share        *float64 // of the pool's requests in the share window (0..1); nil while idle
	LatencyMS    float64
	InFlight     int64
	CPUQuota     *float64
}

// Node returns the named node, or nil.
func (s *Snapshot) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Clones returns the nodes that run binary, in order (catalog-1,
// catalog-2, then extra clones).
func (s *Snapshot) Clones(binary string) []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Kind == binary {
			out = append(out, n)
		}
	}
	return out
}

// AllUp says whether every node is up.
func (s *Snapshot) AllUp() bool {
	for _, n := range s.Nodes {
		if n.State != sources.Up {
			return false
		}
	}
	return len(s.Nodes) > 0
}

// Latest returns a snapshot at most maxAge old, taking one when needed;
// pages polled by several browsers share it.
func (b *Builder) Latest(ctx context.Context, maxAge time.Duration) *Snapshot {
	b.latestMu.Lock()
	defer b.latestMu.Unlock()
	if b.latest == nil || time.Since(b.latest.Taken) > maxAge {
		b.latest = b.Take(ctx)
	}
	return b.latest
}

// notRunning is the detail of a node whose process the supervisor no
// longer runs: it was stopped or killed, or it exited.
const notRunning = "its process is not running (stopped, killed or exited; start brings it back)"

// Take reads every source once.
func (b *Builder) Take(ctx context.Context) *Snapshot {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	snap := &Snapshot{Taken: now()}
	// The page polls every second: a source slower than this is shown as
	// not answering rather than holding up the whole drawing.
	ctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	var m *topology.Manifest
	if b.Manifest != nil {
		var err error
		if m, err = b.Manifest(); err != nil {
			snap.Problems = append(snap.Problems, "no stack manifest: "+err.Error())
			return snap
		}
	} else if b.Targets == nil {
		snap.Problems = append(snap.Problems, "no stack manifest and no Prometheus targets to list the components from")
		return snap
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		pools    map[string]sources.Pool
		running  map[string]bool
		targets  []sources.Target
		health   = map[string]sources.Health{}
		problems []string
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	wg.Go(func() {
		p, err := b.Gateway.Backends(ctx)
		if err != nil {
			problem("%v", err)
		}
		mu.Lock()
		pools = p
		mu.Unlock()
	})
	if b.Running != nil {
		wg.Go(func() {
			r, err := b.Running.Running(ctx)
			if err != nil {
				problem("%v", err)
			}
			mu.Lock()
			running = r
			mu.Unlock()
		})
	}
	if m == nil {
		wg.Go(func() {
			ts, err := b.Targets.Targets(ctx)
			if err != nil {
				problem("%v", err)
			}
			mu.Lock()
			targets = ts
			mu.Unlock()
		})
	} else {
		for _, c := range m.Components {
			wg.Go(func() {
				h := b.Probe.Probe(ctx, c)
				mu.Lock()
				health[c.Name] = h
				mu.Unlock()
			})
		}
	}
	var workerShare map[string]float64
	if b.Metrics != nil {
		wg.Go(func() {
			get := func(q string) *float64 {
				s, err := b.Metrics.Instant(ctx, q)
				if err != nil {
					problem("%v", err)
					return nil
				}
				if len(s) == 0 {
					return nil
				}
				v := s[0].Value
				return &v
			}
			rs, rb, cl, ob := get(QueryReplicaLagSeconds), get(QueryReplicaLagBytes), get(QueryConsumerLag), get(QueryOutboxBacklog)
			ws, _ := b.Metrics.Instant(ctx, QueryWorkerShare)
			mu.Lock()
			snap.ReplicaLagSeconds, snap.ReplicaLagBytes, snap.ConsumerLag, snap.OutboxBacklog = rs, rb, cl, ob
			workerShare = map[string]float64{}
			for _, s := range ws {
				workerShare[s.Labels["instance"]] = s.Value
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Strings(problems)
	snap.Problems = append(snap.Problems, problems...)

	if m == nil {
		b.targetNodes(snap, targets, pools, workerShare)
		return snap
	}
	byPort := map[int]string{}
	for _, c := range m.Components {
		n := &Node{Name: c.Name, Kind: string(c.Kind), Addr: addr(c)}
		if c.Kind == topology.Service {
			n.Kind = binaryOf(c.Name)
			byPort[c.Ports["http"]] = c.Name
		}
		h := health[c.Name]
		n.State, n.Detail = h.State, h.Detail
		if running != nil && !running[c.Name] && h.State != sources.Up {
			n.Detail = notRunning
		}
		if c.Kind == topology.Jaeger && n.State != sources.Up && b.JaegerBuild != nil {
			if jb := b.JaegerBuild(); jb.InProgress() {
				n.State, n.Detail = "building", fmt.Sprintf("first build of its Go module: %.0f %%", jb.Percent)
			}
		}
		setWorkerShare(n, workerShare)
		snap.Nodes = append(snap.Nodes, n)
	}
	b.addClones(ctx, snap, pools, byPort, running)
	return snap
}

func setWorkerShare(n *Node, workerShare map[string]float64) {
	if share, ok := workerShare[n.Name]; ok {
		n.Clone = &Clone{Pool: "orders.placed consumer group", Share: &share}
	}
}

// targetNodes draws a stack that has no manifest (a Kubernetes cluster):
// its processes are the targets Prometheus scrapes, named by their
// instance label (the pod), healthy when the last scrape was, in the
// topology's order of jobs. Each gateway member is joined to the target at
// its address; a member Prometheus does not scrape (yet) gets a node of
// its own with the gateway's view of its health. The data stores are not
// scraped, so they are not drawn: their operators report them.
func (b *Builder) targetNodes(snap *Snapshot, targets []sources.Target, pools map[string]sources.Pool, workerShare map[string]float64) {
	order := map[string]int{}
	for i, c := range topology.Native() {
		job, _, ok := topology.Scrape(c)
		if _, seen := order[job]; ok && !seen {
			order[job] = i
		}
	}
	targets = slices.Clone(targets)
	slices.SortStableFunc(targets, func(x, y sources.Target) int {
		ox, okx := order[x.Job]
		oy, oky := order[y.Job]
		switch {
		case okx != oky: // jobs the topology does not know go last
			if okx {
				return -1
			}
			return 1
		case ox != oy:
			return ox - oy
		}
		return strings.Compare(x.Job+" "+x.Instance, y.Job+" "+y.Instance)
	})
	byAddr := map[string]*Node{}
	for _, t := range targets {
		n := &Node{Name: t.Instance, Kind: t.Job, Addr: t.Addr, State: sources.Up}
		switch t.Health {
		case "up":
		case "down":
			n.State, n.Detail = sources.Down, "Prometheus cannot scrape it: "+t.LastError
		default:
			n.State, n.Detail = sources.Down, "not scraped yet"
		}
		setWorkerShare(n, workerShare)
		snap.Nodes = append(snap.Nodes, n)
		byAddr[t.Addr] = n
	}
	for _, poolName := range slices.Sorted(maps.Keys(pools)) {
		pool := pools[poolName]
		shares := b.shares(snap.Taken, pool)
		for _, m := range pool.Members {
			a := strings.TrimPrefix(m.URL, "http://")
			n := byAddr[a]
			if n == nil {
				n = &Node{Name: poolName + " " + a, Kind: poolName, Addr: a, State: sources.Up}
				if !m.Healthy {
					n.State, n.Detail = sources.Down, "the gateway's health checks fail; Prometheus does not scrape it"
				}
				snap.Nodes = append(snap.Nodes, n)
			}
			n.Clone = memberClone(poolName, m, shares)
		}
	}
}

func memberClone(pool string, m sources.Member, shares map[string]float64) *Clone {
	c := &Clone{Pool: pool, URL: m.URL, GatewayState: m.State, LatencyMS: m.LatencyMS, InFlight: m.InFlight, CPUQuota: m.CPUQuota}
	if s, ok := shares[m.URL]; ok {
		c.Share = &s
	}
	return c
}

// addClones joins each gateway member to its node, adding nodes for
// clones the topology does not list (scale-out).
func (b *Builder) addClones(ctx context.Context, snap *Snapshot, pools map[string]sources.Pool, byPort map[int]string, running map[string]bool) {
	for _, poolName := range slices.Sorted(maps.Keys(pools)) {
		pool := pools[poolName]
		shares := b.shares(snap.Taken, pool)
		last := 0
		for port, name := range byPort {
			if binaryOf(name) == poolName {
				last = max(last, port)
			}
		}
		known := len(snap.Clones(poolName))
		for _, m := range pool.Members {
			port := portOf(m.URL)
			name, inTopology := byPort[port]
			n := snap.Node(name)
			if !inTopology {
				// stackctl's scale-out names the clone after the port it
				// takes: the one after the topology's last, and so on.
				name = poolName + "-" + strconv.Itoa(known+port-last)
				if port <= last {
					name = poolName + " " + strings.TrimPrefix(m.URL, "http://")
				}
				h := b.Probe.ProbeURL(ctx, m.URL)
				n = &Node{Name: name, Kind: poolName, Addr: strings.TrimPrefix(m.URL, "http://"), State: h.State, Detail: h.Detail}
				if running != nil && !running[name] && h.State != sources.Up {
					n.Detail = notRunning
				}
				snap.Nodes = append(snap.Nodes, n)
			}
			n.Clone = memberClone(poolName, m, shares)
		}
	}
}

// shares records each member's count of requests served (tried minus
// failed) and returns its share of the pool's over the share window. A member that served nothing
// while others did has share 0; when the pool was idle nobody has one.
func (b *Builder) shares(now time.Time, pool sources.Pool) map[string]float64 {
	window := b.ShareWindow
	if window <= 0 {
		window = 5 * time.Second
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.history == nil {
		b.history = map[string][]count{}
	}
	served := map[string]int64{}
	var total int64
	for _, m := range pool.Members {
		h := b.history[m.URL]
		if len(h) > 0 && h[len(h)-1].at.Before(now.Add(-2*window)) {
			h = nil // nobody looked for a while: an old count would smear the window
		}
		// Served, not tried: a dead clone's refused tries are no share.
		servedNow := m.Requests - m.Failures
		h = append(h, count{at: now, requests: servedNow})
		// Keep one sample at or before the window's start, to measure from.
		for len(h) > 2 && !h[1].at.After(now.Add(-window)) {
			h = h[1:]
		}
		b.history[m.URL] = h
		if d := servedNow - h[0].requests; d > 0 {
			served[m.URL] = d
			total += d
		}
	}
	out := map[string]float64{}
	if total == 0 {
		return out
	}
	for _, m := range pool.Members {
		out[m.URL] = float64(served[m.URL]) / float64(total)
	}
	return out
}

func addr(c topology.ManifestComponent) string {
	for _, name := range []string{"http", "pg", "memcache", "broker", "query"} {
		if p, ok := c.Ports[name]; ok {
			return "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	return ""
}

// binaryOf is "catalog" for "catalog-2", and the name itself for "gateway".
func binaryOf(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func portOf(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}
