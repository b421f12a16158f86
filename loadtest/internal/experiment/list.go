package experiment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The loads are scenario files inline: the same format as
// loadtest/scenarios, validated the same way.

const productReads = `
products: {first: 1, last: 10000, zipf: 1.1}
mix:
  - {name: product page, weight: 90, path: "/api/products/{product}"}
  - {name: category page, weight: 10, path: "/api/products?category={category}&limit=20"}
lists:
  category: [books, electronics, garden, kitchen, toys, sports, music, movies, games, tools]
`

func load(name, stages string, extra string) string {
	return "name: " + name + "\n" + stages + productReads + extra
}

// ownCatalog is a Setup that loads a catalog process of its own with env.
func ownCatalog(name string, env map[string]string) func(ctx context.Context, s *Stack) (string, func(), error) {
	return func(ctx context.Context, s *Stack) (string, func(), error) {
		c, err := s.StartCatalog(ctx, name, env)
		if err != nil {
			return "", nil, err
		}
		return c.URL, c.Stop, nil
	}
}

// Clones are sized by the CPU quota stackctl gives each (CATALOG_CPUS);
// cloneSlots is only their back pressure: past it a clone queues a few
// requests, then answers 503 with Retry-After instead of slowing every
// request down.
const cloneSlots = 4

var (
	cloneCapacity     = map[string]string{"HTTP_MAX_CONCURRENCY": strconv.Itoa(cloneSlots)}
	cloneCapacityText = "HTTP_MAX_CONCURRENCY=" + strconv.Itoa(cloneSlots)
)

// boundClones restarts the topology's catalog clones with back pressure
// and returns how to restart them as they were. Without CPU quotas a
// clone may use the whole machine, and the experiment refuses to run.
func boundClones(ctx context.Context, s *Stack) (func(), error) {
	if err := s.M.RequireCPUQuotas(); err != nil {
		return func() {}, err
	}
	names, urls := s.CatalogClones()
	var bound []string
	restore := func() {
		for _, name := range bound {
			rctx := context.WithoutCancel(ctx)
			err := s.Control(rctx, "stop", name)
			if err == nil {
				err = s.Control(rctx, "start", name)
			}
			if err != nil {
				fmt.Fprintf(s.Log, "  restoring %s: %v\n", name, err)
			}
		}
		waitGateway(context.WithoutCancel(ctx), 2*time.Second)
	}
	for i, name := range names {
		if err := s.Control(ctx, "stop", name); err != nil {
			return restore, err
		}
		bound = append(bound, name)
		if err := s.ControlEnv(ctx, "start", name, cloneCapacity); err != nil {
			return restore, err
		}
		if err := CheckLimit(ctx, urls[i], cloneSlots); err != nil {
			return restore, err
		}
	}
	return restore, s.WaitServing(ctx, "catalog", len(names))
}

// All lists the experiments in the order bench runs them.
func All() []*Experiment {
	return []*Experiment{
		{
			Name: "cache", Concept: "caching, server side",
			Question: "What does memcached cache-aside save? One catalog process, the same Zipf reads of products and list pages, CATALOG_CACHE_ENABLED on and off, starting cold: " +
				"the SQL statements and CPU the process spends per request (from its own /metrics), and the latency. On this machine both answer in about a millisecond at this rate; the work taken off the database is what differs.",
			Load: load("cache", `warmup: {rate: 200, duration: 5s}
stages: [{rate: 1000, duration: 15s}]
`, ""),
			Metric:     DBQueries,
			ServerCost: true,
			Configs: []Config{
				{Name: "cache on", Setup: ownCatalog("cache-on", map[string]string{"CATALOG_CACHE_ENABLED": "true"})},
				{Name: "cache off", Setup: ownCatalog("cache-off", map[string]string{"CATALOG_CACHE_ENABLED": "false"})},
			},
			Verdict: func(rows []Row) string {
				return strings.Join([]string{
					compare(rows, "CPU per request", func(r Row) float64 {
						return serverValue(r, func(c *ServerCost) float64 { return c.CPUPerRequestUS })
					}),
					compare(rows, "p50", func(r Row) float64 { return r.P50 }),
					compare(rows, "p99", func(r Row) float64 { return r.P99 }),
				}, "\n")
			},
		},
		{
			Name: "vertical", Concept: "vertical scaling",
			Question: "Same clone, a bigger machine: GOMAXPROCS 1, a pool of 2 connections and " + strconv.Itoa(cloneSlots) + " capacity slots against GOMAXPROCS 2, a pool of 8 and " + strconv.Itoa(2*cloneSlots) + " slots, cache off so the work is real. A rate sweep finds the highest rate each one holds.",
			Load: load("vertical", `warmup: {rate: 50, duration: 3s}
stages: [{sweep: {from: 50, to: 550, step: 100, duration: 5s}}]
`, "limits: {max_workers: 400, max_lag: 2s}\n"),
			Metric: Capacity,
			Configs: []Config{
				{Name: "1 core, pool 2, " + strconv.Itoa(cloneSlots) + " slots", Setup: ownCatalog("vertical-small", map[string]string{"CATALOG_CACHE_ENABLED": "false", "GOMAXPROCS": "1", "CATALOG_REPLICA_POOL_MAX": "2", "CATALOG_PRIMARY_POOL_MAX": "2",
					"HTTP_MAX_CONCURRENCY": strconv.Itoa(cloneSlots)})},
				{Name: "2 cores, pool 8, " + strconv.Itoa(2*cloneSlots) + " slots", Setup: ownCatalog("vertical-big", map[string]string{"CATALOG_CACHE_ENABLED": "false", "GOMAXPROCS": "2", "CATALOG_REPLICA_POOL_MAX": "8", "CATALOG_PRIMARY_POOL_MAX": "8",
					"HTTP_MAX_CONCURRENCY": strconv.Itoa(2 * cloneSlots)})},
			},
		},
		{
			Name: "clones", Concept: "horizontal scaling, load balancing",
			Question: "1, 2 and 3 catalog clones behind the gateway (stackctl stop catalog-2 / scale-out catalog), the same read sweep. Each clone runs in a CPU cgroup with the stack's quota (CATALOG_CPUS), a small machine of its own, and is started with " + cloneCapacityText + " as back pressure: " +
				"a clone past its limit queues a few requests, then answers 503 with Retry-After (the gateway retries another clone within its budget).",
			Load: load("clones", `warmup: {rate: 50, duration: 3s}
stages: [{sweep: {from: 50, to: 750, step: 100, duration: 5s}}]
`, "limits: {max_workers: 400, max_lag: 2s}\n"),
			Metric:  Capacity,
			Prepare: boundClones,
			Configs: []Config{
				{Name: "1 clone", Setup: func(ctx context.Context, s *Stack) (string, func(), error) {
					if err := s.Control(ctx, "stop", "catalog-2"); err != nil {
						return "", nil, err
					}
					// Back as Prepare left it: with back pressure.
					restart := func() { _ = s.ControlEnv(context.WithoutCancel(ctx), "start", "catalog-2", cloneCapacity) }
					return "", restart, s.WaitServing(ctx, "catalog", 1)
				}},
				{Name: "2 clones", Setup: func(ctx context.Context, s *Stack) (string, func(), error) {
					return "", nil, s.WaitServing(ctx, "catalog", 2)
				}},
				{Name: "3 clones", Setup: func(ctx context.Context, s *Stack) (string, func(), error) {
					if err := s.ControlEnv(ctx, "scale-out", "catalog", cloneCapacity); err != nil {
						return "", nil, fmt.Errorf("%w: %v", errSkip, err)
					}
					return "", func() { _ = s.Control(context.WithoutCancel(ctx), "scale-in", "catalog") }, s.WaitServing(ctx, "catalog", 3)
				}},
			},
		},
		{
			Name: "knee", Concept: "latency vs throughput, performance vs scalability",
			Question: "Where is the knee? Reads through the gateway at rising rates: latency stays flat, then climbs, then the stack stops holding the rate (saturated).",
			Load: load("knee", `warmup: {rate: 50, duration: 3s}
stages: [{sweep: {from: 50, to: 650, step: 50, duration: 4s}}]
`, "limits: {max_workers: 400, max_lag: 2s}\n"),
			Metric:  Capacity,
			Configs: []Config{{Name: "gateway, 2 clones"}},
			Verdict: knee,
		},
		{
			Name: "kill-clone", Concept: "availability: a clone dies under load",
			Question: "catalog-1 is killed (SIGKILL) 5 s into a steady read load and started again at 12 s. The gateway's health checks, ejection and budgeted retries should hide it: 0 errors expected.",
			Load: load("kill-clone", `warmup: {rate: 50, duration: 3s}
stages: [{rate: 120, duration: 20s}]
`, ""),
			Metric: Errors,
			Configs: []Config{
				{Name: "no failure"},
				{Name: "catalog-1 killed", During: func(ctx context.Context, s *Stack) {
					if !sleep(ctx, 8*time.Second) { // warm-up 3 s + 5 s
						return
					}
					if err := s.Control(ctx, "kill", "catalog-1"); err != nil {
						fmt.Fprintln(s.Log, "  kill:", err)
						return
					}
					sleep(ctx, 7*time.Second)
					if err := s.Control(context.WithoutCancel(ctx), "start", "catalog-1"); err != nil {
						fmt.Fprintln(s.Log, "  start:", err)
					}
				}},
			},
			Verdict: func(rows []Row) string {
				if len(rows) == 2 && rows[1].Errors == 0 {
					return "no request failed while a clone died: the gateway hid it"
				}
				return "requests failed while a clone died: see the error kinds"
			},
		},
		{
			Name: "primary-down", Concept: "availability vs consistency (CAP)",
			Question: "The catalog's Postgres primary is stopped under a mixed load (90 % reads, 10 % admin writes). Reads should keep working from the replica and the cache; writes should fail fast with 503.",
			Load: `name: primary-down
customers: 1
warmup: {rate: 20, duration: 3s}
stages: [{rate: 60, duration: 12s}]
products: {first: 1, last: 10000, zipf: 1.1}
mix:
  - {name: product page, weight: 90, path: "/api/products/{product}"}
  - name: create product
    weight: 10
    method: POST
    path: /api/products
    auth: admin
    body: '{"sku":"LT-{uuid}","name":"load test {uuid}","description":"made by the primary-down experiment","category":"tools","price_cents":1234,"currency":"USD","stock":5,"attributes":{}}'
limits: {timeout: 5s}
`,
			Metric: Errors,
			Configs: []Config{
				{Name: "primary up"},
				{Name: "primary stopped", Setup: func(ctx context.Context, s *Stack) (string, func(), error) {
					if err := s.Control(ctx, "stop", "pg-catalog-primary"); err != nil {
						return "", nil, err
					}
					waitGateway(ctx, 3*time.Second)
					return "", func() { _ = s.Control(context.WithoutCancel(ctx), "start", "pg-catalog-primary") }, nil
				}},
			},
			Verdict: primaryVerdict,
		},
		readYourWrites(),
	}
}

// Find returns the named experiment.
func Find(name string) (*Experiment, bool) {
	for _, e := range All() {
		if e.Name == name {
			return e, true
		}
	}
	return nil, false
}

func compare(rows []Row, what string, f func(Row) float64) string {
	if len(rows) < 2 {
		return ""
	}
	a, b := f(rows[1]), f(rows[0])
	if b == 0 {
		// A cache that answered every read sent no SQL at all: a ratio
		// would be infinite, the two values say it better.
		return fmt.Sprintf("%s: %s %.2f, %s %.2f", what, rows[1].Config, a, rows[0].Config, b)
	}
	return fmt.Sprintf("%s: %s / %s = %.2f×", what, rows[1].Config, rows[0].Config, a/b)
}

func serverValue(r Row, f func(*ServerCost) float64) float64 {
	if r.Server == nil {
		return 0
	}
	return f(r.Server)
}

// knee names the last stage that held its rate with a p99 within 3× of the
// first stage's.
func knee(rows []Row) string {
	if len(rows) == 0 || len(rows[0].Stages) == 0 {
		return ""
	}
	var base float64
	last := ""
	var b strings.Builder
	for _, st := range rows[0].Stages {
		if st.Warmup {
			continue
		}
		mark := ""
		if st.Saturated {
			mark = " SATURATED"
		}
		fmt.Fprintf(&b, "  %-14s achieved %6.1f/s  p50 %8.2fms  p99 %8.2fms%s\n", st.Name, st.AchievedRPS, st.Latency.P50, st.Latency.P99, mark)
		if base == 0 {
			base = st.Latency.P99
		}
		if !st.Saturated && st.Latency.P99 <= 3*base {
			last = fmt.Sprintf("%.0f/s (p99 %.1f ms against %.1f ms at the lowest rate)", st.TargetRPS, st.Latency.P99, base)
		}
	}
	return b.String() + "knee: the highest rate held with p99 within 3× of the lowest rate's is " + last
}

func primaryVerdict(rows []Row) string {
	if len(rows) < 2 {
		return ""
	}
	var b strings.Builder
	for _, r := range rows {
		for _, q := range r.Requests {
			fmt.Fprintf(&b, "%s, %s: %d of %d failed %v; ", r.Config, q.Name, q.Latency.Errors, q.Latency.Count, q.Errors)
		}
	}
	return strings.TrimSuffix(b.String(), "; ")
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// waitGateway gives the gateway's health checks time to see a change.
func waitGateway(ctx context.Context, d time.Duration) { sleep(ctx, d) }
