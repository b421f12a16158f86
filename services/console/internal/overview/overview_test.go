package overview

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/topology"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

type fakeProber struct{ down map[string]bool }

func (f fakeProber) Probe(_ context.Context, c topology.ManifestComponent) sources.Health {
	if f.down[c.Name] {
		return sources.Health{State: sources.Down, Detail: "no answer"}
	}
	return sources.Health{State: sources.Up}
}

func (f fakeProber) ProbeURL(_ context.Context, base string) sources.Health {
	if f.down[base] {
		return sources.Health{State: sources.Down}
	}
	return sources.Health{State: sources.Up}
}

type fakeGateway struct{ pools map[string]sources.Pool }

func (f *fakeGateway) Backends(context.Context) (map[string]sources.Pool, error) {
	if f.pools == nil {
		return nil, errors.New("gateway admin: connection refused")
	}
	return f.pools, nil
}

type fakeRunning map[string]bool

func (f fakeRunning) Running(context.Context) (map[string]bool, error) { return f, nil }

type fakeMetrics map[string]float64

func (f fakeMetrics) Instant(_ context.Context, q string) ([]sources.Sample, error) {
	if v, ok := f[q]; ok {
		return []sources.Sample{{Labels: map[string]string{}, Value: v}}, nil
	}
	return nil, nil
}

func manifest() *topology.Manifest {
	return &topology.Manifest{Components: []topology.ManifestComponent{
		{Name: "gateway", Kind: topology.Service, Ports: map[string]int{"http": 8080}},
		{Name: "catalog-1", Kind: topology.Service, Ports: map[string]int{"http": 8081}},
		{Name: "catalog-2", Kind: topology.Service, Ports: map[string]int{"http": 8082}},
		{Name: "pg-catalog-primary", Kind: topology.Postgres, Ports: map[string]int{"pg": 5433}},
		{Name: "jaeger", Kind: topology.Jaeger, Ports: map[string]int{"health": 13133}},
	}}
}

func catalogPool(c1, c2 int64, extra ...sources.Member) map[string]sources.Pool {
	return map[string]sources.Pool{"catalog": {Name: "catalog", Members: append([]sources.Member{
		{URL: "http://127.0.0.1:8081", State: "up", Requests: c1, LatencyMS: 1.5},
		{URL: "http://127.0.0.1:8082", State: "up", Requests: c2, LatencyMS: 2.5},
	}, extra...)}}
}

func TestSharesFollowTheRequestsEachCloneServedInTheWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	gw := &fakeGateway{pools: catalogPool(100, 100)}
	b := &Builder{
		Manifest: func() (*topology.Manifest, error) { return manifest(), nil },
		Probe:    fakeProber{}, Gateway: gw, ShareWindow: 5 * time.Second,
		Now: func() time.Time { return now },
	}
	first := b.Take(context.Background())
	if s := first.Node("catalog-1").Clone.Share; s != nil {
		t.Fatalf("one sample has no window yet, share = %v", *s)
	}
	now = now.Add(time.Second)
	gw.pools = catalogPool(130, 110) // 30 and 10 requests in a second
	snap := b.Take(context.Background())
	if got := *snap.Node("catalog-1").Clone.Share; got != 0.75 {
		t.Errorf("catalog-1 share = %v, want 0.75", got)
	}
	if got := *snap.Node("catalog-2").Clone.Share; got != 0.25 {
		t.Errorf("catalog-2 share = %v, want 0.25", got)
	}

	// catalog-2 is killed: the tries sent to it fail, catalog-1 serves the
	// rest, and takes the whole share once the window has moved past the
	// requests catalog-2 served.
	for range 6 {
		now = now.Add(time.Second)
		gw.pools["catalog"].Members[0].Requests += 20
		gw.pools["catalog"].Members[1].Requests += 3
		gw.pools["catalog"].Members[1].Failures += 3
		snap = b.Take(context.Background())
	}
	if got := *snap.Node("catalog-1").Clone.Share; got != 1 {
		t.Errorf("after catalog-2 stopped serving, catalog-1 share = %v, want 1", got)
	}
	if got := *snap.Node("catalog-2").Clone.Share; got != 0 {
		t.Errorf("catalog-2 share = %v, want 0", got)
	}
}

func TestAStoppedComponentAndAHungOneAreBothDownEachWithItsReason(t *testing.T) {
	b := &Builder{
		Manifest: func() (*topology.Manifest, error) { return manifest(), nil },
		Probe:    fakeProber{down: map[string]bool{"catalog-2": true, "pg-catalog-primary": true}},
		Gateway:  &fakeGateway{pools: catalogPool(1, 1)},
		Running:  fakeRunning{"gateway": true, "catalog-1": true, "catalog-2": true, "pg-catalog-primary": false, "jaeger": true},
	}
	snap := b.Take(context.Background())
	if n := snap.Node("catalog-2"); n.State != sources.Down || n.Detail != "no answer" {
		t.Errorf("catalog-2 (running per the supervisor, not answering) is %q (%s), want down with the probe's reason", n.State, n.Detail)
	}
	if n := snap.Node("pg-catalog-primary"); n.State != sources.Down || n.Detail != notRunning {
		t.Errorf("pg-catalog-primary (stopped by the supervisor) is %q (%s), want down, not running", n.State, n.Detail)
	}
	if snap.AllUp() {
		t.Error("AllUp with two components not up")
	}
}

func TestAClonesScaleOutAddedAppearsUnderItsName(t *testing.T) {
	quota := 0.5
	b := &Builder{
		Manifest: func() (*topology.Manifest, error) { return manifest(), nil },
		Probe:    fakeProber{},
		Gateway:  &fakeGateway{pools: catalogPool(1, 1, sources.Member{URL: "http://127.0.0.1:8083", State: "up", CPUQuota: &quota})},
	}
	snap := b.Take(context.Background())
	clones := snap.Clones("catalog")
	if len(clones) != 3 || clones[2].Name != "catalog-3" {
		t.Fatalf("catalog clones = %v, want catalog-1, catalog-2, catalog-3", names(clones))
	}
	if q := clones[2].Clone.CPUQuota; q == nil || *q != 0.5 {
		t.Errorf("catalog-3 CPU quota = %v, want 0.5", q)
	}
}

func TestEdgesCarryLagsAndAMissingSourceIsNamed(t *testing.T) {
	b := &Builder{
		Manifest: func() (*topology.Manifest, error) { return manifest(), nil },
		Probe:    fakeProber{down: map[string]bool{"jaeger": true}},
		Gateway:  &fakeGateway{},
		Metrics:  fakeMetrics{QueryReplicaLagSeconds: 0.25, QueryConsumerLag: 12},
		JaegerBuild: func() *sources.JaegerBuild {
			return &sources.JaegerBuild{State: "building", Percent: 40}
		},
	}
	snap := b.Take(context.Background())
	if snap.ReplicaLagSeconds == nil || *snap.ReplicaLagSeconds != 0.25 {
		t.Errorf("replica lag = %v, want 0.25", snap.ReplicaLagSeconds)
	}
	if snap.ConsumerLag == nil || *snap.ConsumerLag != 12 {
		t.Errorf("consumer lag = %v, want 12", snap.ConsumerLag)
	}
	if snap.ReplicaLagBytes != nil {
		t.Errorf("replica lag bytes = %v, want unknown", *snap.ReplicaLagBytes)
	}
	if len(snap.Problems) != 1 || snap.Problems[0] != "gateway admin: connection refused" {
		t.Errorf("problems = %q, want the gateway's", snap.Problems)
	}
	if got := snap.Node("jaeger").State; got != "building" {
		t.Errorf("jaeger during its first build is %q, want building", got)
	}
}

func names(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

type fakeTargets []sources.Target

func (f fakeTargets) Targets(context.Context) ([]sources.Target, error) { return f, nil }

// TestWithoutAManifestTheNodesArePrometheusTargets: on a cluster the
// console reaches no pod but the gateway, Prometheus and Jaeger, so the
// overview lists what Prometheus scrapes, pods by name, in the topology's
// order, and joins each gateway member to its pod by address.
func TestWithoutAManifestTheNodesArePrometheusTargets(t *testing.T) {
	quota := 0.5
	b := &Builder{
		Targets: fakeTargets{
			{Job: "prometheus", Instance: "prometheus-7c9d", Addr: "10.0.0.9:9090", Health: "up"},
			{Job: "catalog", Instance: "catalog-5f6b-x2", Addr: "10.0.0.6:8081", Health: "down", LastError: "connection refused"},
			{Job: "catalog", Instance: "catalog-5f6b-a1", Addr: "10.0.0.5:8081", Health: "up"},
			{Job: "worker", Instance: "worker-66d-q", Addr: "10.0.0.7:8191", Health: "unknown"},
			{Job: "gateway", Instance: "gateway-8d7f", Addr: "10.0.0.2:9081", Health: "up"},
		},
		Gateway: &fakeGateway{pools: map[string]sources.Pool{"catalog": {Name: "catalog", Members: []sources.Member{
			{URL: "http://10.0.0.5:8081", State: "up", Healthy: true, LatencyMS: 1.5, CPUQuota: &quota},
			{URL: "http://10.0.0.6:8081", State: "ejected"},
			{URL: "http://10.0.0.8:8081", State: "up", Healthy: true},
		}}}},
		Metrics: fakeMetrics{QueryConsumerLag: 3},
	}
	snap := b.Take(context.Background())
	want := []string{"catalog-5f6b-a1", "catalog-5f6b-x2", "worker-66d-q", "gateway-8d7f", "prometheus-7c9d", "catalog 10.0.0.8:8081"}
	if got := names(snap.Nodes); !slices.Equal(got, want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	if len(snap.Problems) != 0 {
		t.Errorf("problems %q, want none", snap.Problems)
	}
	up := snap.Node("catalog-5f6b-a1")
	if up.State != sources.Up || up.Kind != "catalog" || up.Clone == nil || up.Clone.LatencyMS != 1.5 || *up.Clone.CPUQuota != 0.5 {
		t.Errorf("catalog-5f6b-a1 = %+v (clone %+v), want up with the gateway's member 10.0.0.5", up, up.Clone)
	}
	if down := snap.Node("catalog-5f6b-x2"); down.State != sources.Down || down.Detail != "Prometheus cannot scrape it: connection refused" || down.Clone.GatewayState != "ejected" {
		t.Errorf("catalog-5f6b-x2 = %+v, want down with Prometheus's reason and the gateway's ejection", down)
	}
	if n := snap.Node("worker-66d-q"); n.State != sources.Down || n.Detail != "not scraped yet" {
		t.Errorf("a target not scraped yet is %q (%s)", n.State, n.Detail)
	}
	if n := snap.Node("catalog 10.0.0.8:8081"); n.State != sources.Up || n.Clone == nil {
		t.Errorf("a member Prometheus does not scrape yet = %+v, want a node with the gateway's view", n)
	}
	if snap.ConsumerLag == nil || *snap.ConsumerLag != 3 {
		t.Errorf("consumer lag = %v, want 3: the edges' numbers come from Prometheus as natively", snap.ConsumerLag)
	}
	if snap.AllUp() {
		t.Error("AllUp with a pod down")
	}
}

func TestWithNeitherManifestNorTargetsTheProblemIsNamed(t *testing.T) {
	snap := (&Builder{Gateway: &fakeGateway{}}).Take(context.Background())
	if len(snap.Nodes) != 0 || len(snap.Problems) != 1 || !strings.Contains(snap.Problems[0], "no stack manifest and no Prometheus targets") {
		t.Errorf("nodes %v, problems %q", names(snap.Nodes), snap.Problems)
	}
}
