package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// sampleReport runs the engine for real against a local server, so the
// report under test has every field the engine fills.
func sampleReport(t *testing.T) *Report {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Trace-Id", "4bf92f3577b34da6a3ce929d0e0e4736")
		if r.URL.Path == "/busy" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	sched, err := engine.NewSchedule([]engine.Stage{
		{Name: "warm-up", From: 20, To: 20, Duration: 500 * time.Millisecond, Warmup: true},
		{Name: "steady", From: 50, To: 50, Duration: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	phases := engine.NewPhases()
	phases.Record("order accepted → final status", 40*time.Millisecond)
	phases.Fail("order accepted → final status", "timeout")
	res, err := engine.Run(context.Background(), engine.Config{
		Schedule: sched, Names: []string{"ok", "busy"}, Phases: phases,
		Next: func() engine.Request {
			if n.Add(1)%10 == 0 {
				return engine.Request{Kind: 1, Method: "GET", URL: srv.URL + "/busy"}
			}
			return engine.Request{Kind: 0, Method: "GET", URL: srv.URL + "/ok"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Report{
		Schema: Schema, Scenario: "sample", Description: "a test", Target: srv.URL, Machine: ThisMachine(),
		Passed: false, Failures: []string{"error rate 0.1 > 0"}, Result: res,
		Traces: []Trace{{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Link: "http://127.0.0.1:16686/api/traces/4bf92f3577b34da6a3ce929d0e0e4736", Error: "not found"}},
	}
}

func TestReportJSONMatchesItsSchema(t *testing.T) {
	rep := sampleReport(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	if errs := validate(schema, doc, "$"); len(errs) > 0 {
		t.Fatalf("the report does not match report.schema.json:\n%s", strings.Join(errs, "\n"))
	}
	// The schema is not vacuous: a report missing a field fails it.
	broken := doc.(map[string]any)
	delete(broken["result"].(map[string]any), "stages")
	broken["result"].(map[string]any)["generator"].(map[string]any)["cpu_share"] = "high"
	if errs := validate(schema, broken, "$"); len(errs) != 2 {
		t.Errorf("a broken report gave %d schema errors, want 2: %v", len(errs), errs)
	}
}

func TestReportNumbersReadBack(t *testing.T) {
	rep := sampleReport(t)
	b, _ := json.Marshal(rep)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r := back.Result
	// Failures stay out of the latency histograms: 90 successes of 100.
	if r.Total.Count != 90 || r.Errors["http 503"] != 10 || math.Abs(r.ErrorRate-0.1) > 1e-9 {
		t.Errorf("total %d, errors %v, rate %v", r.Total.Count, r.Errors, r.ErrorRate)
	}
	if len(r.Stages) != 2 || !r.Stages[0].Warmup || r.Stages[1].TargetRPS != 50 {
		t.Errorf("stages %+v", r.Stages)
	}
	if r.Generator.Cores < 1 || r.Generator.Sent != 110 {
		t.Errorf("generator %+v", r.Generator)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	rep := sampleReport(t)
	var b bytes.Buffer
	if err := rep.HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "<svg"); n < 3 {
		t.Errorf("%d plots, want latency, throughput and spectrum", n)
	}
	for _, banned := range []string{"<script", "<link", " src=", "@import", "cdn"} {
		if strings.Contains(strings.ToLower(page), banned) {
			t.Errorf("the page contains %q: it must not load anything", banned)
		}
	}
	// The only URLs are the SVG namespace and the Jaeger links.
	for _, u := range regexp.MustCompile(`https?://[^"'< ]+`).FindAllString(page, -1) {
		if u != "http://www.w3.org/2000/svg" && !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("unexpected URL %s", u)
		}
	}
	for _, want := range []string{"Slowest requests", "4bf92f3577b34da6a3ce929d0e0e4736", "FAIL", "steady", "Percentile spectrum"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestTextMarksSaturatedStages(t *testing.T) {
	rep := sampleReport(t)
	rep.Result.Stages[1].Saturated = true
	rep.Result.Stages[1].AchievedRatio = 0.8
	var b bytes.Buffer
	rep.Text(&b)
	out := b.String()
	if !strings.Contains(out, "80.0% SATURATED") || !strings.Contains(out, "1 stage(s) saturated") {
		t.Errorf("saturation not shown:\n%s", out)
	}
	if !strings.Contains(out, "generator:") || !strings.Contains(out, "http 503") {
		t.Errorf("summary lacks the generator line or the errors:\n%s", out)
	}
}

// validate checks doc against the subset of JSON Schema the report schema
// uses: type, const, required, properties, additionalProperties, items.
func validate(schema map[string]any, doc any, at string) []string {
	var errs []string
	if types, ok := schema["type"]; ok && !typeMatches(types, doc) {
		return []string{fmt.Sprintf("%s: %v is not of type %v", at, doc, types)}
	}
	if c, ok := schema["const"]; ok && doc != c {
		errs = append(errs, fmt.Sprintf("%s: %v, want %v", at, doc, c))
	}
	switch d := doc.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := d[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing %q", at, r))
			}
		}
		for k, v := range d {
			if sub, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(sub, v, at+"."+k)...)
				continue
			}
			switch extra := schema["additionalProperties"].(type) {
			case bool:
				if !extra && props != nil {
					errs = append(errs, fmt.Sprintf("%s: %q is not in the schema", at, k))
				}
			case map[string]any:
				errs = append(errs, validate(extra, v, at+"."+k)...)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, v := range d {
				errs = append(errs, validate(items, v, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func typeMatches(types any, doc any) bool {
	want := []string{}
	switch t := types.(type) {
	case string:
		want = append(want, t)
	case []any:
		for _, x := range t {
			want = append(want, x.(string))
		}
	}
	var got string
	switch d := doc.(type) {
	case nil:
		got = "null"
	case bool:
		got = "boolean"
	case string:
		got = "string"
	case []any:
		got = "array"
	case map[string]any:
		got = "object"
	case float64:
		if d == math.Trunc(d) && slices.Contains(want, "integer") {
			return true
		}
		got = "number"
	}
	return slices.Contains(want, got)
}

func TestSlowRequestLinksOpenTheConsolesTracePage(t *testing.T) {
	rep := &Report{Traces: []Trace{{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Link: "http://127.0.0.1:16686/api/traces/4bf92f3577b34da6a3ce929d0e0e4736"}}}
	rep.LinkTraces("")
	if got := rep.Traces[0].Link; got != "http://127.0.0.1:16686/api/traces/4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("without a console the link changed to %s", got)
	}
	rep.LinkTraces("http://127.0.0.1:3000/")
	if got, want := rep.Traces[0].Link, "http://127.0.0.1:3000/traces/4bf92f3577b34da6a3ce929d0e0e4736"; got != want {
		t.Errorf("link = %s, want %s", got, want)
	}
}
