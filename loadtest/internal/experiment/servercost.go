package experiment

import (
	"context"
	"fmt"
	"net/http"

	"github.com/scaleshop/scaleshop/infra/scrape"
)

// ServerCost is what one process spent on the load, from its own /metrics
// read before and after: on a machine this small latency barely moves
// while the work saved (CPU, database round trips) is large, so the cost
// is what shows what a cache buys.
type ServerCost struct {
	Requests            float64 `json:"requests"`
	CPUPerRequestUS     float64 `json:"cpu_us_per_request"`
	DBQueriesPerRequest float64 `json:"db_queries_per_request"`
}

// The catalog's counters the cost is read from: the process collector's
// CPU, and the histogram of SQL statements per API request (health and
// metrics requests are not in it).
const (
	cpuMetric     = "process_cpu_seconds_total"
	queriesMetric = "catalog_db_queries_per_request"
)

type costSample struct{ cpu, queries, requests float64 }

func readCostSample(ctx context.Context, base string) (costSample, error) {
	families, err := scrape.Get(ctx, http.DefaultClient, base)
	if err != nil {
		return costSample{}, err
	}
	var s costSample
	var ok bool
	if s.cpu, ok = families.Sum(cpuMetric, nil); !ok {
		return costSample{}, fmt.Errorf("%s/metrics lacks %s", base, cpuMetric)
	}
	// The histogram appears with the first API request: absent is zero.
	for _, m := range families[queriesMetric].GetMetric() {
		s.queries += m.GetHistogram().GetSampleSum()
		s.requests += float64(m.GetHistogram().GetSampleCount())
	}
	return s, nil
}

func costBetween(before, after costSample) *ServerCost {
	n := after.requests - before.requests
	if n <= 0 {
		return nil
	}
	return &ServerCost{
		Requests:            n,
		CPUPerRequestUS:     (after.cpu - before.cpu) / n * 1e6,
		DBQueriesPerRequest: (after.queries - before.queries) / n,
	}
}
