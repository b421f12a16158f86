package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/loadtest/internal/scenario"
)

// TestSmokeScenario runs loadtest/scenarios/smoke.yaml through the gateway
// of the test stack: every flow (reads, search, an order followed to its
// final status) at a low rate, with 0 errors allowed. It is how `make test`
// catches a broken flow.
func TestSmokeScenario(t *testing.T) {
	stack := stacktest.Require(t)
	sc, err := scenario.Load(scenarioPath("smoke"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := runScenario(ctx, sc, common{target: stack.Endpoints.GatewayURL, traces: 1, quiet: true,
		rateScale: 1, durScale: 1}, 1, func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !rep.Passed {
		t.Fatalf("smoke scenario failed: %v\n%s", rep.Failures, out.String())
	}
	res := rep.Result
	if res.Total.Count != int64(res.Scheduled) || res.Total.Count == 0 {
		t.Errorf("%d of %d requests measured", res.Total.Count, res.Scheduled)
	}
	followed := false
	for _, p := range res.Phases {
		if p.Name == scenario.PhaseOrderFinal && p.Latency.Count > 0 && p.Latency.Errors == 0 {
			followed = true
		}
	}
	if !followed {
		t.Errorf("no order was followed to its final status: %+v\n%s", res.Phases, out.String())
	}
	if len(res.Slowest) == 0 || res.Slowest[0].TraceID == "" {
		t.Errorf("the slowest requests carry no X-Trace-Id: %+v", res.Slowest)
	}
	t.Logf("smoke: %d requests, p99 %.1f ms, generator CPU %.1f %%", res.Total.Count, res.Total.P99, res.Generator.CPUShare*100)
}
