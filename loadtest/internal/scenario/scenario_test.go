package scenario

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const good = `name: t
customers: 2
products: {first: 1, last: 100, zipf: 1.2}
warmup: {rate: 5, duration: 2s}
stages:
  - {rate: 10, duration: 3s}
  - {ramp_to: 30, duration: 2s}
  - sweep: {from: 10, to: 30, step: 10, duration: 1s}
mix:
  - name: read
    weight: 3
    path: /api/products/{product}
  - name: order
    weight: 1
    method: POST
    path: /api/orders
    auth: customer
    body: '{"items":[{"product_id":{product},"quantity":{int:1-3}}]}'
    follow: order
thresholds: {p99: 100ms, error_rate: 0}
`

func TestParseBuildsTheSchedule(t *testing.T) {
	s, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := s.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	st := sched.Stages()
	if len(st) != 6 || !st[0].Warmup || st[2].From != 10 || st[2].To != 30 || st[5].From != 30 {
		t.Fatalf("stages = %+v", st)
	}
	// 10 warm-up + 30 + 40 (ramp 10->30 over 2 s) + 10 + 20 + 30
	if sched.Total() != 140 || sched.Duration() != 10*time.Second {
		t.Errorf("total %d over %v", sched.Total(), sched.Duration())
	}
	if *s.Thresholds.ErrorRate != 0 || s.Thresholds.P99 != 100*time.Millisecond {
		t.Errorf("thresholds %+v", s.Thresholds)
	}
}

func TestValidationNamesFieldAndLine(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"negative rate", strings.Replace(good, "{rate: 10, duration: 3s}", "{rate: -10, duration: 3s}", 1),
			"t.yaml:6: stages[0].rate: must be > 0, got -10"},
		{"missing duration", strings.Replace(good, "{rate: 10, duration: 3s}", "{rate: 10}", 1),
			"t.yaml:6: stages[0].duration: must be positive"},
		{"zero weight", strings.Replace(good, "weight: 3", "weight: 0", 1),
			"t.yaml:11: mix[0].weight: must be > 0, got 0"},
		{"unknown placeholder", strings.Replace(good, "{product}\n", "{produkt}\n", 1),
			"t.yaml:12: mix[0].path: {produkt} is not a placeholder"},
		{"bad method", strings.Replace(good, "method: POST", "method: FETCH", 1),
			"t.yaml:15: mix[1].method: \"FETCH\" is not an HTTP method"},
		{"zipf too small", strings.Replace(good, "zipf: 1.2", "zipf: 0.8", 1),
			"t.yaml:3: products.zipf: must be > 1"},
		{"unknown field", strings.Replace(good, "weight: 3", "wieght: 3", 1),
			"t.yaml:11: field wieght not found"},
		{"two shapes", strings.Replace(good, "{rate: 10, duration: 3s}", "{rate: 10, ramp_to: 20, duration: 3s}", 1),
			"t.yaml:6: stages[0]: give exactly one of rate"},
		{"bad duration", strings.Replace(good, "duration: 3s", "duration: soon", 1),
			"t.yaml:6: cannot unmarshal !!str `soon`"},
		{"customers needed", strings.Replace(good, "customers: 2", "customers: 0", 1),
			"t.yaml:17: mix[1].auth: needs customers > 0"},
		{"no name", strings.Replace(good, "name: t\n", "", 1), "t.yaml:1: name: is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
	// Every problem is reported at once, each one typed.
	bad := strings.Replace(strings.Replace(good, "weight: 3", "weight: -1", 1), "{rate: 10, duration: 3s}", "{rate: 10}", 1)
	_, err := Parse("t.yaml", []byte(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want two ValidationErrors, got %v", err)
	}
}

func TestShippedScenariosAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../scenarios/*.yaml")
	want := []string{"browse", "checkout", "mixed", "search", "smoke", "soak", "spike"}
	if len(files) < len(want) {
		t.Fatalf("found %v", files)
	}
	seen := map[string]bool{}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := s.Schedule(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if strings.TrimSpace(s.Description) == "" {
			t.Errorf("%s has no description", f)
		}
		seen[s.Name] = true
	}
	for _, n := range want {
		if !seen[n] {
			t.Errorf("no scenario named %s", n)
		}
	}
}

func TestGeneratorMixAndZipf(t *testing.T) {
	s, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(s, "http://x", []string{"tokA", "tokB"}, "", 42)
	kinds := map[int]int{}
	products := map[string]int{}
	for range 20000 {
		r := g.next()
		kinds[r.Kind]++
		if r.Kind == 0 {
			products[strings.TrimPrefix(r.URL, "http://x/api/products/")]++
			continue
		}
		if r.Method != "POST" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok") {
			t.Fatalf("order request %+v", r)
		}
		if strings.Contains(string(r.Body), "{") && strings.Contains(string(r.Body), "{product}") {
			t.Fatalf("placeholder left in %s", r.Body)
		}
	}
	if share := float64(kinds[0]) / 20000; share < 0.72 || share > 0.78 {
		t.Errorf("read share %.3f, want 0.75", share)
	}
	// Zipf: the most popular product alone gets far more than 1/100.
	top := 0
	for _, n := range products {
		top = max(top, n)
	}
	if frac := float64(top) / float64(kinds[0]); frac < 0.1 {
		t.Errorf("top product has %.3f of views; Zipf(1.2) over 100 gives ~0.2", frac)
	}
	if len(products) < 50 {
		t.Errorf("only %d distinct products drawn", len(products))
	}
}

func TestTraceSamplingMakesTheGeneratorTheRoot(t *testing.T) {
	s, err := Parse("t.yaml", []byte(good+"trace_sampling: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(s, "http://x", []string{"tokA", "tokB"}, "", 7)
	traces := map[trace.TraceID]bool{}
	sampled := 0
	const n = 20000
	for range n {
		r := g.next()
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
		if !sc.IsValid() {
			t.Fatalf("traceparent %q is not a valid W3C trace context", r.Header.Get("Traceparent"))
		}
		traces[sc.TraceID()] = true
		if sc.IsSampled() {
			sampled++
		}
	}
	if len(traces) != n {
		t.Errorf("%d distinct trace ids in %d requests: every request starts its own trace", len(traces), n)
	}
	if share := float64(sampled) / n; share < 0.09 || share > 0.11 {
		t.Errorf("sampled share %.3f, want 0.1", share)
	}

	plain, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if tp := newGenerator(plain, "http://x", []string{"tokA", "tokB"}, "", 7).next().Header.Get("Traceparent"); tp != "" {
		t.Errorf("without trace_sampling the generator sent traceparent %q; the gateway should sample", tp)
	}
	if _, err := Parse("t.yaml", []byte(good+"trace_sampling: 1.5\n")); err == nil || !strings.Contains(err.Error(), "trace_sampling: must be within [0, 1]") {
		t.Errorf("trace_sampling 1.5: error %v, want it refused", err)
	}
}
