// Command ordersbench measures the order pipeline through the gateway at a
// steady (open-model) rate: accept latency (POST -> 202, measured from the
// moment each request was due, not when it was sent) and accept->final
// latency as the client lives it: from the 202 until a long poll
// (GET /api/orders/{id}?wait=) shows the final status, sent at once after
// the 202. It prints the trace sampling ratio the gateway ran with.
//
//	ordersbench -stack .state/test/stack.json -rates 100,200,400 -duration 30s
//
// It makes its own products (admin dev token) with stock that never runs
// out, and its own customers (one dev token each).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/topology"
)

func main() {
	lifecycle.Main("ordersbench", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

type options struct {
	gateway   string
	adminURL  string // the gateway's admin API, for its sampling ratio; "" when unknown
	rates     []int
	duration  time.Duration
	warmup    time.Duration
	customers int
	maxFlight int
}

func parse(args []string, getenv func(string) string) (options, error) {
	fs := flag.NewFlagSet("ordersbench", flag.ContinueOnError)
	stack := fs.String("stack", getenv("SCALESHOP_STACK"), "stack.json of the stack to measure")
	gateway := fs.String("gateway", "", "gateway URL (default: from -stack)")
	rates := fs.String("rates", "100", "comma-separated steady rates, orders/s, one step each")
	o := options{}
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "length of each step")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "a step at the first rate, not reported, before the measured ones (0: none)")
	fs.IntVar(&o.customers, "customers", 200, "distinct customers (spread over the shards)")
	fs.IntVar(&o.maxFlight, "max-in-flight", 1000, "requests in flight before the generator gives up on a step")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.gateway = *gateway
	if o.gateway == "" {
		if *stack == "" {
			return o, errors.New("give -gateway or -stack (or set SCALESHOP_STACK)")
		}
		m, err := topology.ReadManifest(*stack)
		if err != nil {
			return o, err
		}
		o.gateway = m.Endpoints.GatewayURL
		o.adminURL = m.Endpoints.GatewayAdminURL
	}
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-rates: %q is not a positive rate", r)
		}
		o.rates = append(o.rates, n)
	}
	return o, nil
}

type bench struct {
	opts     options
	http     *http.Client
	tokens   []string
	products []int64
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	opts, err := parse(args, getenv)
	if err != nil {
		return err
	}
	b := &bench{opts: opts, http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}}
	if err := b.setup(ctx); err != nil {
		return err
	}
	if opts.warmup > 0 {
		// A stack just (re)started measures its own warm-up otherwise: the
		// broker's JIT, the workers' group rebalance, cold pools and caches
		// put the first runs' p99 at 3-4x the steady state's.
		fmt.Fprintf(stdout, "warm-up: %s at %d orders/s (not reported)\n", opts.warmup, opts.rates[0])
		if _, err := b.step(ctx, opts.rates[0], opts.warmup); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	fmt.Fprintf(stdout, "trace sampling: %s (the gateway's otel_trace_sample_ratio; every hop follows it)\n", b.sampling(ctx))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tsent\t202\tother\taccept p50 ms\tp99 ms\tmax ms\tfinal p50 ms\tp99 ms\tmax ms\tconfirmed\trejected\tpending\tgen CPU %\t")
	for _, rate := range opts.rates {
		s, err := b.step(ctx, rate, opts.duration)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%.0f\t\n", rate, s.sent, s.accepted, s.other,
			ms(pct(s.accept, 50)), ms(pct(s.accept, 99)), ms(pct(s.accept, 100)),
			ms(pct(s.final, 50)), ms(pct(s.final, 99)), ms(pct(s.final, 100)), s.confirmed, s.rejected, s.pending, s.cpu)
		tw.Flush()
	}
	return nil
}

// sampling reads the share of traces the gateway samples, the root of
// every order's trace, from its /metrics.
func (b *bench) sampling(ctx context.Context) string {
	if b.opts.adminURL == "" {
		return "unknown (no -stack)"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.opts.adminURL+"/metrics", nil)
	if err != nil {
		return "unknown: " + err.Error()
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return "unknown: " + err.Error()
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return "unknown: " + err.Error()
	}
	f, ok := families["otel_trace_sample_ratio"]
	if !ok || len(f.GetMetric()) == 0 {
		return "unknown (the gateway does not export otel_trace_sample_ratio)"
	}
	return strconv.FormatFloat(f.GetMetric()[0].GetGauge().GetValue(), 'g', -1, 64)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (b *bench) call(ctx context.Context, method, path, token string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.opts.gateway+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func (b *bench) token(ctx context.Context, customer, role string) (string, error) {
	var tok struct{ Token string }
	code, err := b.call(ctx, http.MethodPost, "/api/auth/dev-token", "", map[string]string{"customer_id": customer, "role": role}, &tok)
	if err != nil || code != http.StatusOK {
		return "", fmt.Errorf("dev token for %s: %d %v (is the stack in dev mode?)", customer, code, err)
	}
	return tok.Token, nil
}

func (b *bench) setup(ctx context.Context) error {
	run := rand.Uint32()
	admin, err := b.token(ctx, "bench-admin", "admin")
	if err != nil {
		return err
	}
	for i := range 20 {
		var p struct{ ID int64 }
		code, err := b.call(ctx, http.MethodPost, "/api/products", admin, map[string]any{
			"sku": fmt.Sprintf("bench-%x-%d", run, i), "name": "bench product", "description": "made by ordersbench",
			"category": "bench", "price_cents": 100 + i, "currency": "USD", "stock": 1_000_000_000, "attributes": map[string]any{},
		}, &p)
		if err != nil || code != http.StatusCreated {
			return fmt.Errorf("create product: %d %v", code, err)
		}
		b.products = append(b.products, p.ID)
	}
	for i := range b.opts.customers {
		tok, err := b.token(ctx, fmt.Sprintf("bench-%x-%d", run, i), "customer")
		if err != nil {
			return err
		}
		b.tokens = append(b.tokens, tok)
	}
	return nil
}

type result struct {
	sent, accepted, other        int
	accept, final                []time.Duration
	confirmed, rejected, pending int
	cpu                          float64
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// step sends rate orders/s for the duration on an open model: request i is
// due at start + i/rate whatever happened to the earlier ones, and its
// accept latency is counted from then. After each 202 the same client
// long-polls the order until it is final: accept->final is the time from
// the 202 to the answer that shows the final status.
func (b *bench) step(ctx context.Context, rate int, duration time.Duration) (result, error) {
	var (
		res      result
		mu       sync.Mutex
		wg       sync.WaitGroup
		inFlight = make(chan struct{}, b.opts.maxFlight)
	)
	n := int(duration.Seconds() * float64(rate))
	cpu0, wall0 := cpuTime(), time.Now()
	start := time.Now().Add(50 * time.Millisecond)
	for i := range n {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / float64(rate)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(d):
			}
		}
		select {
		case inFlight <- struct{}{}:
		default:
			return res, fmt.Errorf("%d orders waiting for their 202 at %d/s: the system (or this generator) cannot keep up; lower the rate", b.opts.maxFlight, rate)
		}
		res.sent++
		wg.Go(func() {
			tok := b.tokens[i%len(b.tokens)]
			lines := []map[string]any{{"product_id": b.products[rand.IntN(len(b.products))], "quantity": 1 + rand.IntN(3)}}
			var o struct{ ID string }
			code, err := b.call(ctx, http.MethodPost, "/api/orders", tok, map[string]any{"items": lines}, &o)
			accepted := time.Now()
			// The cap is on orders not yet accepted: a slow pipeline shows in
			// accept->final, a slow accept stops the step.
			<-inFlight
			mu.Lock()
			if err != nil || code != http.StatusAccepted {
				res.other++
				mu.Unlock()
				return
			}
			res.accepted++
			res.accept = append(res.accept, accepted.Sub(due))
			mu.Unlock()
			status := b.awaitFinal(ctx, o.ID, tok)
			final := time.Since(accepted)
			mu.Lock()
			defer mu.Unlock()
			switch status {
			case "confirmed":
				res.confirmed++
			case "rejected":
				res.rejected++
			default:
				res.pending++
				return
			}
			res.final = append(res.final, final)
		})
	}
	wg.Wait()
	res.cpu = 100 * float64(cpuTime()-cpu0) / float64(time.Since(wall0)) / 2 // of the machine's 2 cores
	slices.Sort(res.accept)
	slices.Sort(res.final)
	return res, nil
}

// awaitFinal long-polls an order until its status is final, for at most
// finalWithin; it returns the last status seen ("" on errors).
func (b *bench) awaitFinal(ctx context.Context, id, token string) string {
	deadline := time.Now().Add(finalWithin)
	status := ""
	for time.Now().Before(deadline) {
		var o struct{ Status string }
		code, err := b.call(ctx, http.MethodGet, "/api/orders/"+id+"?wait=5s", token, nil, &o)
		if err != nil || code != http.StatusOK {
			return status
		}
		if status = o.Status; status != "pending" {
			return status
		}
	}
	return status
}

// finalWithin is how long an order may take to be final before the bench
// counts it as pending.
const finalWithin = 20 * time.Second
