package catalogdb

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

func TestReadPathRouting(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		// probes: primary LSN (0: primary down), replica replay (0: replica down), one per second
		primary, replica []catalog.LSN
		token            catalog.LSN
		want             catalog.Source
		wantLag          float64
	}{
		{name: "caught up", primary: []catalog.LSN{100, 100}, replica: []catalog.LSN{100, 100}, want: catalog.FromReplica},
		{name: "small lag", primary: []catalog.LSN{100, 200}, replica: []catalog.LSN{100, 100}, want: catalog.FromReplica, wantLag: 0},
		{name: "lag past the bound", primary: []catalog.LSN{100, 200, 300, 400}, replica: []catalog.LSN{100, 100, 100, 100},
			want: catalog.FromPrimary, wantLag: 2},
		{name: "token ahead of the replica", primary: []catalog.LSN{100, 200}, replica: []catalog.LSN{100, 150}, token: 180, want: catalog.FromPrimary},
		{name: "token replayed", primary: []catalog.LSN{100, 200}, replica: []catalog.LSN{100, 190}, token: 180, want: catalog.FromReplica},
		{name: "replica down", primary: []catalog.LSN{100, 200}, replica: []catalog.LSN{100, 0}, want: catalog.FromPrimary},
		{name: "primary down: replica whatever its lag", primary: []catalog.LSN{100, 200, 300, 0}, replica: []catalog.LSN{100, 100, 100, 100},
			token: 300, want: catalog.FromReplica, wantLag: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newReadPath(ReadPathConfig{MaxLag: 1500 * time.Millisecond}, nil, nil, prometheus.NewRegistry())
			var now time.Time
			for i := range tt.primary {
				now = t0.Add(time.Duration(i) * time.Second)
				rp.update(now, tt.primary[i] > 0, tt.primary[i], tt.replica[i] > 0, tt.replica[i])
			}
			if got := rp.source(tt.token); got != tt.want {
				t.Errorf("source = %s, want %s (health %+v)", got, tt.want, rp.health())
			}
			if got := rp.health().lagSeconds; tt.primary[len(tt.primary)-1] > 0 && tt.replica[len(tt.replica)-1] > 0 && got != tt.wantLag {
				t.Errorf("lag = %vs, want %vs", got, tt.wantLag)
			}
		})
	}
}

func TestLagSecondsDatesTheReplayPosition(t *testing.T) {
	t0 := time.Unix(0, 0)
	h := []lsnSample{{t0, 10}, {t0.Add(time.Second), 20}, {t0.Add(2 * time.Second), 30}}
	now := t0.Add(2 * time.Second)
	for _, tt := range []struct {
		replay catalog.LSN
		want   float64
	}{{30, 0}, {40, 0}, {25, 0}, {20, 0}, {15, 1}, {5, 2}} {
		if got := lagSeconds(now, h, tt.replay); got != tt.want {
			t.Errorf("replay %d: lag %v, want %v", tt.replay, got, tt.want)
		}
	}
}
