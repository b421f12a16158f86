// Package report writes a run's results three ways: a terminal table, JSON
// (for CI and comparing runs), and a self-contained HTML page whose plots
// are inline SVG (no script, nothing fetched).
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/telemetry"
	"github.com/scaleshop/scaleshop/infra/traceview"
	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// Schema names the JSON layout; it changes when a field changes meaning.
const Schema = "scaleshop.loadtest.report/v1"

// Report is one run of one scenario.
type Report struct {
	Schema      string             `json:"schema"`
	Scenario    string             `json:"scenario"`
	Description string             `json:"description,omitempty"`
	File        string             `json:"file,omitempty"`
	Target      string             `json:"target"`
	Machine     Machine            `json:"machine"`
	Sampling    telemetry.Sampling `json:"trace_sampling"`
	Passed      bool               `json:"passed"`
	Failures    []string           `json:"failures"`
	Result      *engine.Result     `json:"result"`
	Traces      []Trace            `json:"traces"` // of the slowest requests
}

// Machine is where the run happened; numbers only compare on the same one.
type Machine struct {
	Cores     int    `json:"cores"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
	CPU       string `json:"cpu,omitempty"`
}

// Trace is one slow request's trace.
type Trace struct {
	TraceID   string           `json:"trace_id"`
	Link      string           `json:"link"` // the console's trace page, else Jaeger's query API
	Waterfall string           `json:"waterfall,omitempty"`
	Error     string           `json:"error,omitempty"`
	trace     *traceview.Trace // for the HTML bars
}

// ThisMachine describes the machine running the generator.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// FetchTraces looks up the slowest requests' traces in Jaeger, waiting a
// little for the last spans to be exported. A missing Jaeger is not an
// error of the run: each trace says why it has no waterfall.
func (r *Report) FetchTraces(ctx context.Context, jaegerURL string, n int) {
	if jaegerURL == "" || r.Result == nil {
		return
	}
	client := &traceview.Client{BaseURL: jaegerURL}
	seen := map[string]bool{}
	for _, s := range r.Result.Slowest {
		if s.TraceID == "" || seen[s.TraceID] || len(r.Traces) >= n {
			continue
		}
		seen[s.TraceID] = true
		t := Trace{TraceID: s.TraceID, Link: strings.TrimRight(jaegerURL, "/") + "/api/traces/" + s.TraceID}
		deadline := time.Now().Add(5 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			tr, err := client.Get(cctx, s.TraceID)
			cancel()
			if err == nil {
				var b strings.Builder
				_ = traceview.Render(&b, tr, traceview.Options{BarWidth: 30})
				t.Waterfall, t.trace = b.String(), tr
				break
			}
			if !errors.Is(err, traceview.ErrNotFound) || time.Now().After(deadline) {
				t.Error = err.Error()
				break
			}
			time.Sleep(500 * time.Millisecond) // the batch exporter has not sent it yet
		}
		r.Traces = append(r.Traces, t)
	}
}

// LinkTraces points each slow request's trace link at the console's trace
// page (consoleURL/traces/{id}), a waterfall in the browser, instead of
// Jaeger's JSON; an empty consoleURL keeps the Jaeger links.
func (r *Report) LinkTraces(consoleURL string) {
	if consoleURL == "" {
		return
	}
	for i := range r.Traces {
		r.Traces[i].Link = strings.TrimRight(consoleURL, "/") + "/traces/" + r.Traces[i].TraceID
	}
}

// WriteFiles writes <dir>/<base>.json and <dir>/<base>.html.
func (r *Report) WriteFiles(dir, base string) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, base+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", err
	}
	htmlPath = filepath.Join(dir, base+".html")
	f, err := os.Create(htmlPath)
	if err != nil {
		return "", "", err
	}
	if err := r.HTML(f); err != nil {
		f.Close()
		return "", "", err
	}
	return jsonPath, htmlPath, f.Close()
}

// fmtMS prints milliseconds with sensible precision.
func fmtMS(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}
