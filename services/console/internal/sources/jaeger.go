package sources

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/traceview"
)

// Jaeger reads Jaeger's query API: the same JSON its own UI reads.
type Jaeger struct {
	QueryURL string
	HTTP     *http.Client
}

// TraceQuery is a search over recent traces.
type TraceQuery struct {
	Service     string
	Operation   string
	MinDuration time.Duration
	Limit       int
	Lookback    time.Duration
}

// TraceSummary is one search result.
type TraceSummary struct {
	TraceID   string
	Root      string // "service: operation" of the first root span
	Start     time.Time
	Duration  time.Duration
	Spans     int
	Services  []string
	HasErrors bool
}

// Services lists the services Jaeger has spans from.
func (j *Jaeger) Services(ctx context.Context) ([]string, error) {
	var out struct {
		Data []string `json:"data"`
	}
	if err := getJSON(ctx, j.HTTP, j.base()+"/api/services", &out); err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	sort.Strings(out.Data)
	return out.Data, nil
}

// Operations lists a service's span names.
func (j *Jaeger) Operations(ctx context.Context, service string) ([]string, error) {
	var out struct {
		Data []string `json:"data"`
	}
	if err := getJSON(ctx, j.HTTP, j.base()+"/api/services/"+url.PathEscape(service)+"/operations", &out); err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	sort.Strings(out.Data)
	return out.Data, nil
}

// Search finds recent traces, newest first.
func (j *Jaeger) Search(ctx context.Context, q TraceQuery) ([]TraceSummary, error) {
	v := url.Values{"service": {q.Service}}
	if q.Operation != "" {
		v.Set("operation", q.Operation)
	}
	if q.MinDuration > 0 {
		v.Set("minDuration", q.MinDuration.String())
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	v.Set("limit", strconv.Itoa(limit))
	lookback := q.Lookback
	if lookback <= 0 {
		lookback = time.Hour
	}
	end := time.Now()
	v.Set("start", strconv.FormatInt(end.Add(-lookback).UnixMicro(), 10))
	v.Set("end", strconv.FormatInt(end.UnixMicro(), 10))
	var out struct {
		Data []traceview.APITrace `json:"data"`
	}
	if err := getJSON(ctx, j.HTTP, j.base()+"/api/traces?"+v.Encode(), &out); err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	var sums []TraceSummary
	for _, at := range out.Data {
		t := traceview.Build(at)
		s := TraceSummary{TraceID: t.TraceID, Start: t.Start, Duration: t.Duration, Spans: len(t.Spans), Services: t.Services}
		if len(t.Roots) > 0 {
			s.Root = t.Roots[0].Service + ": " + t.Roots[0].Operation
		}
		for _, sp := range t.Spans {
			s.HasErrors = s.HasErrors || sp.Error
		}
		sums = append(sums, s)
	}
	sort.Slice(sums, func(a, b int) bool { return sums[a].Start.After(sums[b].Start) })
	return sums, nil
}

// Trace fetches one trace as a tree.
func (j *Jaeger) Trace(ctx context.Context, id string) (*traceview.Trace, error) {
	c := &traceview.Client{BaseURL: j.base(), HTTP: j.HTTP}
	return c.Get(ctx, id)
}

func (j *Jaeger) base() string { return strings.TrimRight(j.QueryURL, "/") }
