// Package sources reads what the console shows from the processes that
// know it: the gateway's admin API, Prometheus's HTTP API, Jaeger's query
// API, each component's own health endpoint or port, and the native
// supervisor's control socket. Each reader is small and returns plain
// values, so the pages can be tested with fakes.
package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Gateway reads the gateway's admin API (loopback only).
type Gateway struct {
	AdminURL string
	HTTP     *http.Client
}

// Member is one clone in a gateway pool, as /admin/backends reports it.
type Member struct {
	URL       string  `json:"url"`
	State     string  `json:"state"` // up, down, ejected, draining
	Healthy   bool    `json:"healthy"`
	InFlight  int64   `json:"in_flight"`
	LatencyMS float64 `json:"latency_ewma_ms"`
	Requests  int64   `json:"requests"`
	Failures  int64   `json:"failures"`
	Ejections int64   `json:"ejections"`
	// CPUQuota is the clone's CPU cgroup quota in cores, when the gateway
	// knows it (absent: the clone runs without one).
	CPUQuota *float64 `json:"cpu_quota_cores,omitempty"`
}

// Pool is one gateway pool.
type Pool struct {
	Name    string   `json:"name"`
	Policy  string   `json:"policy"`
	Ready   bool     `json:"ready"`
	Members []Member `json:"members"`
}

// Backends returns every pool by name.
func (g *Gateway) Backends(ctx context.Context) (map[string]Pool, error) {
	var out struct {
		Pools map[string]Pool `json:"pools"`
	}
	if err := getJSON(ctx, g.HTTP, strings.TrimRight(g.AdminURL, "/")+"/admin/backends", &out); err != nil {
		return nil, fmt.Errorf("gateway admin: %w", err)
	}
	return out.Pools, nil
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	if hc == nil {
		hc = &http.Client{Timeout: 3 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
