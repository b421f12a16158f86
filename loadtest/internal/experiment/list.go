package experiment

import (
	"context"
	"fmt"
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

// All lists the experiments in the order bench runs them.
func All() []*Experiment {
	kill := &killCheck{name: "catalog-1"}
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
			Check: func(o *Outcome) []string {
				if len(o.Rows) < 2 || o.Rows[0].Server == nil || o.Rows[1].Server == nil {
					return []string{"both configurations must report their SQL statements per request"}
				}
				on, off := o.Rows[0].Server.DBQueriesPerRequest, o.Rows[1].Server.DBQueriesPerRequest
				if on >= off {
					return []string{fmt.Sprintf("the cache saved no SQL: %.2f statements per request with it, %.2f without", on, off)}
				}
				return nil
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
		vertical(),
		clones(),
		knee(),
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
					kill.confirm(ctx, s)
					sleep(ctx, 7*time.Second)
					if err := s.Control(context.WithoutCancel(ctx), "start", "catalog-1"); err != nil {
						fmt.Fprintln(s.Log, "  start:", err)
					}
				}},
			},
			Verdict: func(rows []Row) string {
				switch {
				case !kill.done():
					return "the kill was not confirmed: " + kill.String()
				case len(rows) == 2 && rows[1].Errors == 0:
					return "no request failed while a clone died (" + kill.String() + "): the gateway hid it"
				}
				return "requests failed while a clone died (" + kill.String() + "): see the error kinds"
			},
			Check: func(o *Outcome) []string {
				var fails []string
				if !kill.done() {
					fails = append(fails, "the kill was not confirmed: "+kill.String())
				}
				for _, r := range o.Rows {
					if r.Errors > 0 {
						fails = append(fails, fmt.Sprintf("%s: %d requests failed %v", r.Config, r.Errors, r.ErrorKinds))
					}
				}
				return fails
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
			Check:   primaryCheck,
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

// primaryCheck: with the primary up nothing fails; with it stopped reads
// still succeed and every write fails with 503.
func primaryCheck(o *Outcome) []string {
	if len(o.Rows) < 2 {
		return []string{"both configurations must run"}
	}
	var fails []string
	if r := o.Rows[0]; r.Errors > 0 {
		fails = append(fails, fmt.Sprintf("%s: %d requests failed %v", r.Config, r.Errors, r.ErrorKinds))
	}
	for _, q := range o.Rows[1].Requests {
		switch q.Name {
		case "product page":
			if q.Latency.Errors > 0 {
				fails = append(fails, fmt.Sprintf("reads failed while the primary was down: %d %v", q.Latency.Errors, q.Errors))
			}
		case "create product":
			if q.Latency.Count > 0 || q.Latency.Errors == 0 || q.Errors["http 503"] != q.Latency.Errors {
				fails = append(fails, fmt.Sprintf("writes while the primary was down: %d succeeded, failures %v; want every one 503", q.Latency.Count, q.Errors))
			}
		}
	}
	return fails
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
