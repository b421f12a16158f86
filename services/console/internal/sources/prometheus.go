package sources

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sort"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus runs PromQL against the stack's Prometheus.
type Prometheus struct {
	api promv1.API
}

// NewPrometheus returns a client of the Prometheus at baseURL.
func NewPrometheus(baseURL string) (*Prometheus, error) {
	c, err := promapi.NewClient(promapi.Config{Address: baseURL})
	if err != nil {
		return nil, err
	}
	return &Prometheus{api: promv1.NewAPI(c)}, nil
}

// Sample is one series' value at one instant.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Point is one value of a series over time.
type Point struct {
	T time.Time
	V float64
}

// Series is one labelled series over a range.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Instant evaluates query now; series come sorted by their labels.
func (p *Prometheus) Instant(ctx context.Context, query string) ([]Sample, error) {
	v, _, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return nil, fmt.Errorf("prometheus %q: %w", query, err)
	}
	var out []Sample
	switch v := v.(type) {
	case model.Vector:
		for _, s := range v {
			if f := float64(s.Value); !math.IsNaN(f) {
				out = append(out, Sample{Labels: labels(s.Metric), Value: f})
			}
		}
	case *model.Scalar:
		out = append(out, Sample{Labels: map[string]string{}, Value: float64(v.Value)})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out, nil
}

// Range evaluates query over the last window, one point per step.
func (p *Prometheus) Range(ctx context.Context, query string, window, step time.Duration) ([]Series, error) {
	end := time.Now()
	v, _, _, err := p.api.QueryRange(ctx, query, promv1.Range{Start: end.Add(-window), End: end, Step: step})
	if err != nil {
		return nil, fmt.Errorf("prometheus %q: %w", query, err)
	}
	m, _ := v.(model.Matrix)
	var out []Series
	for _, s := range m {
		ser := Series{Labels: labels(s.Metric)}
		for _, sp := range s.Values {
			if f := float64(sp.Value); !math.IsNaN(f) && !math.IsInf(f, 0) {
				ser.Points = append(ser.Points, Point{T: sp.Timestamp.Time(), V: f})
			}
		}
		out = append(out, ser)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i].Labels) < fmt.Sprint(out[j].Labels) })
	return out, nil
}

// Target is one process Prometheus scrapes, with its last scrape's health.
type Target struct {
	Job, Instance string
	Addr          string // host:port it is scraped at
	Health        string // up, down or unknown (not scraped yet)
	LastError     string
}

// Targets returns the active scrape targets, sorted by job and instance.
func (p *Prometheus) Targets(ctx context.Context) ([]Target, error) {
	r, err := p.api.Targets(ctx)
	if err != nil {
		return nil, fmt.Errorf("prometheus targets: %w", err)
	}
	out := make([]Target, 0, len(r.Active))
	for _, t := range r.Active {
		tg := Target{
			Job: string(t.Labels["job"]), Instance: string(t.Labels["instance"]),
			Health: string(t.Health), LastError: t.LastError,
		}
		if u, err := url.Parse(t.ScrapeURL); err == nil {
			tg.Addr = u.Host
		}
		out = append(out, tg)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Job < out[j].Job || (out[i].Job == out[j].Job && out[i].Instance < out[j].Instance)
	})
	return out, nil
}

func labels(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != model.MetricNameLabel {
			out[string(k)] = string(v)
		}
	}
	return out
}
