package scrape

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const text = `# HELP otel_trace_sample_ratio Share of traces sampled.
# TYPE otel_trace_sample_ratio gauge
otel_trace_sample_ratio 0.25
# HELP catalog_cache_operations_total Cache operations.
# TYPE catalog_cache_operations_total counter
catalog_cache_operations_total{op="get",result="hit"} 30
catalog_cache_operations_total{op="get",result="miss"} 10
catalog_cache_operations_total{op="set",result="ok"} 10
# HELP http_server_request_duration_seconds Latency.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{le="+Inf"} 3
http_server_request_duration_seconds_sum 0.3
http_server_request_duration_seconds_count 3
`

func TestSum(t *testing.T) {
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"otel_trace_sample_ratio", nil, 0.25, true},
		{"catalog_cache_operations_total", map[string]string{"op": "get"}, 40, true},
		{"catalog_cache_operations_total", map[string]string{"op": "get", "result": "hit"}, 30, true},
		{"catalog_cache_operations_total", nil, 50, true},
		{"catalog_cache_operations_total", map[string]string{"op": "delete"}, 0, false},
		{"no_such_metric", nil, 0, false},
		{"http_server_request_duration_seconds", nil, 0, false}, // a histogram has no single value
	}
	for _, tt := range tests {
		got, ok := f.Sum(tt.name, tt.labels)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Sum(%s, %v) = %g, %v; want %g, %v", tt.name, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(text))
	}))
	defer srv.Close()
	f, err := Get(context.Background(), srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Sum("otel_trace_sample_ratio", nil); !ok || v != 0.25 {
		t.Fatalf("ratio %g, %v", v, ok)
	}
	if _, err := Get(context.Background(), srv.Client(), srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a 404 must be an error naming it, got %v", err)
	}
}
