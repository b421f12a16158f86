package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/engine"
	"github.com/scaleshop/scaleshop/loadtest/orderfollow"
)

// Options are the run's settings that do not belong in the file.
type Options struct {
	BaseURL  string
	Progress io.Writer
	Log      io.Writer
	Seed     uint64 // 0: random
	// CustomerPrefix names the virtual customers: <prefix>-0001 ...
	CustomerPrefix string
}

// Outcome is a finished run of a scenario.
type Outcome struct {
	Result   *engine.Result
	Failures []string // thresholds crossed; empty means pass
	BaseURL  string
}

// Passed says whether every threshold held.
func (o *Outcome) Passed() bool { return len(o.Failures) == 0 }

// Phase names of an order followed to its end.
const (
	PhaseOrderFinal     = orderfollow.PhaseFinal
	PhaseOrderConfirmed = orderfollow.PhaseConfirmed
	PhaseOrderRejected  = orderfollow.PhaseRejected
)

// Run mints the customers' tokens, runs the schedule and checks the
// thresholds.
func (s *Scenario) Run(ctx context.Context, opt Options) (*Outcome, error) {
	sched, err := s.Schedule()
	if err != nil {
		return nil, err
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	base := strings.TrimRight(opt.BaseURL, "/")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}}
	defer client.CloseIdleConnections()

	prefix := opt.CustomerPrefix
	if prefix == "" {
		prefix = "loadtest"
	}
	var customers []string
	var admin string
	needAdmin := false
	for _, r := range s.Mix {
		needAdmin = needAdmin || r.Auth == "admin"
	}
	if s.Customers > 0 || needAdmin {
		fmt.Fprintf(opt.Log, "minting %d customer tokens at %s/api/auth/dev-token\n", s.Customers, base)
	}
	for i := range s.Customers {
		tok, err := DevToken(ctx, client, base, fmt.Sprintf("%s-%04d", prefix, i+1), "customer")
		if err != nil {
			return nil, err
		}
		customers = append(customers, tok)
	}
	if needAdmin {
		if admin, err = DevToken(ctx, client, base, prefix+"-admin", "admin"); err != nil {
			return nil, err
		}
	}

	gen := newGenerator(s, base, customers, admin, opt.Seed)
	phases := engine.NewPhases()
	follower := orderfollow.New(client, base, phases, 1024)
	names := make([]string, len(s.Mix))
	for i, r := range s.Mix {
		names[i] = r.Name
	}
	cfg := engine.Config{
		Schedule: sched, Names: names, Next: gen.next,
		MaxWorkers: s.Limits.MaxWorkers, MaxLag: s.Limits.MaxLag, Timeout: s.Limits.Timeout,
		Progress: opt.Progress, Phases: phases,
		KeepBody: func(kind int) bool { return kind >= 0 && kind < len(s.Mix) && s.Mix[kind].Follow == "order" },
		OnResult: func(r engine.Response) {
			// A warm-up order is not followed: its accept→final would land
			// in the measured phase while its acceptance did not.
			if !r.Warmup && r.Kind >= 0 && r.Kind < len(s.Mix) && s.Mix[r.Kind].Follow == "order" {
				cust, err := strconv.Atoi(r.Tag)
				if err != nil || cust < 0 || cust >= len(customers) {
					phases.Fail(PhaseOrderFinal, "no customer for the order")
					return
				}
				follower.Start(ctx, r, customers[cust])
			}
		},
		Drain: follower.Wait,
	}
	res, err := engine.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Outcome{Result: res, Failures: s.check(res), BaseURL: base}, nil
}

// DevToken mints a dev-mode bearer token for customer with role through
// the gateway at base.
func DevToken(ctx context.Context, c *http.Client, base, customer, role string) (string, error) {
	body, _ := json.Marshal(map[string]string{"customer_id": customer, "role": role})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/auth/dev-token", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("minting a dev token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("minting a dev token for %s: %s %s (is the stack in dev mode?)", customer, resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("dev token answer for %s has no token (%v)", customer, err)
	}
	return out.Token, nil
}

// check compares the result with the thresholds.
func (s *Scenario) check(res *engine.Result) []string {
	var out []string
	t := s.Thresholds
	if res.Aborted != "" {
		out = append(out, "the run stopped early: "+res.Aborted)
	}
	lim := func(name string, got float64, max time.Duration) {
		if max > 0 && got > float64(max.Microseconds())/1000 {
			out = append(out, fmt.Sprintf("%s %.1f ms > %s", name, got, max))
		}
	}
	lim("p50", res.Total.P50, t.P50)
	lim("p95", res.Total.P95, t.P95)
	lim("p99", res.Total.P99, t.P99)
	if t.ErrorRate != nil && res.ErrorRate > *t.ErrorRate {
		out = append(out, fmt.Sprintf("error rate %.4f > %g (%v)", res.ErrorRate, *t.ErrorRate, res.Errors))
	}
	if t.MaxSaturatedStages != nil {
		n := 0
		for _, st := range res.Stages {
			if st.Saturated && !st.Warmup {
				n++
			}
		}
		if n > *t.MaxSaturatedStages {
			out = append(out, fmt.Sprintf("%d stages saturated (achieved < 99 %% of target), at most %d allowed", n, *t.MaxSaturatedStages))
		}
	}
	for _, p := range res.Phases {
		if p.Name == PhaseOrderFinal {
			lim("order accepted → final p99", p.Latency.P99, t.OrderFinalP99)
			if t.ErrorRate != nil && p.Latency.Errors > 0 && float64(p.Latency.Errors)/float64(p.Latency.Count+p.Latency.Errors) > *t.ErrorRate {
				out = append(out, fmt.Sprintf("orders not followed to a final status: %v", p.Errors))
			}
		}
	}
	return out
}

// generator builds requests; the engine's pacer calls next.
type generator struct {
	s         *Scenario
	base      string
	customers []string
	admin     string
	cum       []int // cumulative weights
	mu        sync.Mutex
	rng       *mrand.Rand
	zipf      *mrand.Zipf
	perm      []int // popularity rank -> product id
	last      int   // the last {product} drawn
}

func newGenerator(s *Scenario, base string, customers []string, admin string, seed uint64) *generator {
	if seed == 0 {
		seed = mrand.Uint64()
	}
	g := &generator{s: s, base: base, customers: customers, admin: admin, rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	total := 0
	for _, r := range s.Mix {
		total += r.Weight
		g.cum = append(g.cum, total)
	}
	n := s.Products.Last - s.Products.First + 1
	if s.Products.Zipf > 1 {
		g.zipf = mrand.NewZipf(g.rng, s.Products.Zipf, 1, uint64(n-1))
		// The most popular products are spread over the id range (and so
		// over categories and cache nodes), the same ones on every run.
		g.perm = mrand.New(mrand.NewPCG(1, 2)).Perm(n)
	}
	return g
}

func (g *generator) next() engine.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	pick := g.rng.IntN(g.cum[len(g.cum)-1])
	kind := 0
	for pick >= g.cum[kind] {
		kind++
	}
	spec := g.s.Mix[kind]
	cust := -1
	if len(g.customers) > 0 {
		cust = g.rng.IntN(len(g.customers))
	}
	expand := func(text string) string {
		if !strings.Contains(text, "{") {
			return text
		}
		return placeholder.ReplaceAllStringFunc(text, func(m string) string { return g.value(m[1:len(m)-1], cust) })
	}
	req := engine.Request{
		Kind: kind, Tag: strconv.Itoa(cust), Method: strings.ToUpper(spec.Method),
		URL: g.base + expand(spec.Path), Header: http.Header{},
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	if spec.Body != "" {
		req.Body = []byte(expand(spec.Body))
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range spec.Headers {
		req.Header.Set(k, expand(v))
	}
	if r := g.s.TraceSampling; r != nil {
		req.Header.Set("Traceparent", engine.TraceParent(*r))
	}
	switch {
	case spec.Auth == "customer" && cust >= 0:
		req.Header.Set("Authorization", "Bearer "+g.customers[cust])
	case spec.Auth == "admin":
		req.Header.Set("Authorization", "Bearer "+g.admin)
	}
	return req
}

// product draws a product id; g.mu is held.
func (g *generator) product() int {
	if g.zipf != nil {
		return g.s.Products.First + g.perm[g.zipf.Uint64()]
	}
	return g.s.Products.First + g.rng.IntN(g.s.Products.Last-g.s.Products.First+1)
}

// value draws one placeholder value; g.mu is held.
func (g *generator) value(name string, cust int) string {
	switch name {
	case "product":
		g.last = g.product()
		return strconv.Itoa(g.last)
	case "other_product":
		// Another product than the last {product}: an order's lines must
		// name distinct products.
		for range 100 {
			if p := g.product(); p != g.last {
				return strconv.Itoa(p)
			}
		}
		return strconv.Itoa(g.s.Products.First + (g.last-g.s.Products.First+1)%(g.s.Products.Last-g.s.Products.First+1))
	case "customer":
		return strconv.Itoa(cust + 1)
	case "uuid":
		var b [16]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	if spec, ok := strings.CutPrefix(name, "int:"); ok {
		lo, hi, _ := strings.Cut(spec, "-")
		a, _ := strconv.Atoi(lo)
		b, _ := strconv.Atoi(hi)
		return strconv.Itoa(a + g.rng.IntN(b-a+1))
	}
	list := g.s.Lists[name]
	return list[g.rng.IntN(len(list))]
}
