package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadSampling(t *testing.T) {
	for _, tc := range []struct {
		text  string
		known bool
		ratio float64
	}{
		{"# HELP otel_trace_sample_ratio x\n# TYPE otel_trace_sample_ratio gauge\notel_trace_sample_ratio 0.1\ngo_goroutines 12\n", true, 0.1},
		{"otel_trace_sample_ratio 1\n", true, 1},
		{"otel_trace_sample_ratio_other 0.5\ngo_goroutines 3\n", false, 0},
		{"otel_trace_sample_ratio abc\n", false, 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(tc.text))
		}))
		got := ReadSampling(context.Background(), srv.URL)
		srv.Close()
		if got.Known != tc.known || got.Ratio != tc.ratio || got.Source == "" {
			t.Errorf("ReadSampling over %q = %+v, want known %v ratio %v and a source", tc.text, got, tc.known, tc.ratio)
		}
	}
}
