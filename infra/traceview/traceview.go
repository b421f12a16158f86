// Package traceview reads a trace from Jaeger's query API and shows it as a
// waterfall in the terminal, or as JSON. The Jaeger built from its Go module
// has no web UI; this is how a native-stack user follows a request tier by
// tier. The load-test reports use it for their slowest requests.
package traceview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Span is one span, resolved: service and instance names filled in, parent
// linked, attributes flattened to strings.
type Span struct {
	SpanID    string        `json:"span_id"`
	ParentID  string        `json:"parent_id,omitempty"`
	Service   string        `json:"service"`
	Instance  string        `json:"instance,omitempty"`
	Operation string        `json:"operation"`
	Kind      string        `json:"kind,omitempty"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration_ns"`
	Error     bool          `json:"error,omitempty"`
	// ErrorText is what went wrong: the recorded exception's message, else
	// the span status's description.
	ErrorText string            `json:"error_text,omitempty"`
	Attrs     map[string]string `json:"attributes,omitempty"`
	Children  []*Span           `json:"-"`
	Depth     int               `json:"depth"`
	// Offset is the start relative to the trace's first span.
	Offset time.Duration `json:"offset_ns"`
	// QueueTime is set on a consumer span whose parent is a producer span:
	// from the start of the publish to the start of processing. It is
	// measured start to start because the producer span lasts until the
	// broker's acks, which can come after a consumer already has the message.
	QueueTime time.Duration `json:"queue_time_ns,omitempty"`
}

// Trace is a whole trace in depth-first order.
type Trace struct {
	TraceID  string        `json:"trace_id"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Services []string      `json:"services"`
	// Roots are spans without a parent in the trace; more than one means a
	// broken propagation somewhere.
	Roots []*Span `json:"-"`
	Spans []*Span `json:"spans"`
}

// ErrNotFound means Jaeger has no trace with that id (yet).
var ErrNotFound = errors.New("trace not found")

// Client talks to Jaeger's query API (http://127.0.0.1:16686).
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// Get fetches one trace.
func (c *Client) Get(ctx context.Context, traceID string) (*Trace, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		strings.TrimRight(c.BaseURL, "/")+"/api/traces/"+url.PathEscape(traceID), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", traceID, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger query %s: %s", traceID, resp.Status)
	}
	var body apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("jaeger query %s: %w", traceID, err)
	}
	if len(body.Data) == 0 {
		return nil, fmt.Errorf("%s: %w", traceID, ErrNotFound)
	}
	return Build(body.Data[0]), nil
}

// apiResponse is the part of /api/traces/{id} that is read.
type apiResponse struct {
	Data []APITrace `json:"data"`
}

// APITrace is one trace as Jaeger's query API returns it.
type APITrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64    `json:"startTime"` // µs since the epoch
		Duration  int64    `json:"duration"`  // µs
		Tags      []apiTag `json:"tags"`
		ProcessID string   `json:"processID"`
		Logs      []struct {
			Fields []apiTag `json:"fields"`
		} `json:"logs"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string   `json:"serviceName"`
		Tags        []apiTag `json:"tags"`
	} `json:"processes"`
}

type apiTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Build resolves an API trace into a tree.
func Build(at APITrace) *Trace {
	byID := map[string]*Span{}
	services := map[string]bool{}
	t := &Trace{TraceID: at.TraceID}
	for _, as := range at.Spans {
		proc := at.Processes[as.ProcessID]
		s := &Span{
			SpanID:    as.SpanID,
			Service:   proc.ServiceName,
			Operation: as.OperationName,
			Start:     time.UnixMicro(as.StartTime),
			Duration:  time.Duration(as.Duration) * time.Microsecond,
			Attrs:     map[string]string{},
		}
		for _, tag := range proc.Tags {
			if tag.Key == "service.instance.id" {
				s.Instance = fmt.Sprint(tag.Value)
			}
		}
		statusText := ""
		for _, tag := range as.Tags {
			v := fmt.Sprint(tag.Value)
			switch tag.Key {
			case "span.kind":
				s.Kind = v
			case "error":
				s.Error = v == "true"
			case "otel.status_code":
				s.Error = s.Error || v == "ERROR"
			case "otel.status_description":
				statusText = v
			default:
				s.Attrs[tag.Key] = v
			}
		}
		// RecordError becomes a log (span event) carrying exception.message:
		// the error itself, more telling than the status's summary.
		for _, l := range as.Logs {
			for _, f := range l.Fields {
				if f.Key == "exception.message" && s.ErrorText == "" {
					s.ErrorText = fmt.Sprint(f.Value)
				}
			}
		}
		if s.ErrorText == "" {
			s.ErrorText = statusText
		}
		for _, ref := range as.References {
			if ref.RefType == "CHILD_OF" || s.ParentID == "" {
				s.ParentID = ref.SpanID
			}
		}
		byID[s.SpanID] = s
		services[s.Service] = true
	}
	var end time.Time
	for _, s := range byID {
		if p, ok := byID[s.ParentID]; ok {
			p.Children = append(p.Children, s)
			if s.Kind == "consumer" && p.Kind == "producer" {
				s.QueueTime = s.Start.Sub(p.Start)
			}
		} else {
			t.Roots = append(t.Roots, s)
		}
		if t.Start.IsZero() || s.Start.Before(t.Start) {
			t.Start = s.Start
		}
		if e := s.Start.Add(s.Duration); e.After(end) {
			end = e
		}
	}
	t.Duration = end.Sub(t.Start)
	for name := range services {
		t.Services = append(t.Services, name)
	}
	sort.Strings(t.Services)
	byStart := func(spans []*Span) {
		sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	}
	byStart(t.Roots)
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		s.Depth = depth
		s.Offset = s.Start.Sub(t.Start)
		t.Spans = append(t.Spans, s)
		byStart(s.Children)
		for _, c := range s.Children {
			walk(c, depth+1)
		}
	}
	for _, r := range t.Roots {
		walk(r, 0)
	}
	return t
}
