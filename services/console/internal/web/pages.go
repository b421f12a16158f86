package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/infra/traceview"
	"github.com/scaleshop/scaleshop/services/console/internal/concepts"
	"github.com/scaleshop/scaleshop/services/console/internal/overview"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

// liveAge is how old a polled overview may be: the pages poll every second.
const liveAge = 900 * time.Millisecond

var funcs = template.FuncMap{
	"pct": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f %%", *v*100)
	},
	"share": func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', 3, 64)
	},
	"pctWidth": func(v *float64) string {
		if v == nil {
			return "0"
		}
		return fmt.Sprintf("%.0f", *v*100)
	},
	"ms": func(d time.Duration) string {
		switch {
		case d >= time.Second:
			return fmt.Sprintf("%.2f s", d.Seconds())
		case d >= time.Millisecond:
			return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
		default:
			return fmt.Sprintf("%d µs", d.Microseconds())
		}
	},
	"seconds": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return formatValue(*v, concepts.Seconds)
	},
	"bytes": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return formatValue(*v, concepts.Bytes)
	},
	"num": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return strconv.FormatFloat(*v, 'f', 0, 64)
	},
	"cores": func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'g', 3, 64) + " core"
	},
	"clock": func(t time.Time) string { return t.Format("15:04:05.000") },
}

// page is what every full page gets.
type page struct {
	Nav   string
	Title string
	Data  any
}

// render executes one named template of a page's set.
func (s *Server) render(w http.ResponseWriter, status int, set, name string, data any) {
	var b bytes.Buffer
	if err := s.pages[set].ExecuteTemplate(&b, name, data); err != nil {
		s.cfg.Log.Error("template", "set", set, "name", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) full(w http.ResponseWriter, status int, set, title string, data any) {
	s.render(w, status, set, "layout.html", page{Nav: set, Title: title, Data: data})
}

// overviewData is the topology drawing's input.
type overviewData struct {
	Snap *overview.Snapshot
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	s.full(w, http.StatusOK, "overview", "Overview", overviewData{Snap: s.cfg.Overview.Latest(r.Context(), liveAge)})
}

func (s *Server) overviewLive(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "overview", "overview-live", overviewData{Snap: s.cfg.Overview.Latest(r.Context(), liveAge)})
}

// Concepts: each panel's series over the last chartWindow.
const (
	chartWindow = 10 * time.Minute
	chartStep   = 10 * time.Second
)

type panelView struct {
	concepts.Concept
	Series []seriesView
}

type seriesView struct {
	concepts.Series
	Chart template.HTML
	Lines []lineView
	Error string
}

type lineView struct {
	Name, Color, Value string
}

type conceptsData struct {
	Panels        []panelView
	NoPrometheus  bool
	WindowMinutes int
}

func (s *Server) concepts(ctx context.Context) conceptsData {
	all := concepts.All()
	data := conceptsData{Panels: make([]panelView, len(all)), NoPrometheus: s.cfg.Metrics == nil, WindowMinutes: int(chartWindow.Minutes())}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	end := s.cfg.Now()
	var wg sync.WaitGroup
	for i, c := range all {
		data.Panels[i] = panelView{Concept: c, Series: make([]seriesView, len(c.Series))}
		for j, ser := range c.Series {
			sv := &data.Panels[i].Series[j]
			sv.Series = ser
			if s.cfg.Metrics == nil {
				sv.Error = "no Prometheus in this stack"
				continue
			}
			wg.Go(func() {
				got, err := s.cfg.Metrics.Range(ctx, ser.Query, chartWindow, chartStep)
				if err != nil {
					sv.Error = "Prometheus did not answer"
					return
				}
				sv.Chart = sparkline(got, end.Add(-chartWindow), end, 260, 56)
				for k, line := range got {
					name := line.Labels[ser.By]
					if ser.By == "" || name == "" {
						name = ser.Label
					}
					value := "—"
					if n := len(line.Points); n > 0 && end.Sub(line.Points[n-1].T) < time.Minute {
						value = formatValue(line.Points[n-1].V, ser.Unit)
					}
					sv.Lines = append(sv.Lines, lineView{Name: name, Color: palette[k%len(palette)], Value: value})
				}
			})
		}
	}
	wg.Wait()
	return data
}

func (s *Server) conceptsPage(w http.ResponseWriter, r *http.Request) {
	s.full(w, http.StatusOK, "concepts", "Concepts", s.concepts(r.Context()))
}

func (s *Server) conceptsLive(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "concepts", "concept-panels", s.concepts(r.Context()))
}

type breakData struct {
	Enabled  bool
	Groups   []actionGroup
	Snap     *overview.Snapshot
	Timeline []entry
}

func (s *Server) breakPage(w http.ResponseWriter, r *http.Request) {
	snap := s.cfg.Overview.Latest(r.Context(), liveAge)
	s.full(w, http.StatusOK, "break", "Break it", breakData{
		Enabled: s.cfg.Control != nil, Groups: groups(snap), Snap: snap, Timeline: s.timeline.list(),
	})
}

func (s *Server) timelineLive(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusOK, "break", "timeline", s.timeline.list())
}

func (s *Server) shopPage(w http.ResponseWriter, _ *http.Request) {
	s.full(w, http.StatusOK, "shop", "Shop", nil)
}

// Traces.

type tracesData struct {
	Services    []string
	Operations  []string
	Service     string
	Operation   string
	MinDuration string
	Limit       int
	Results     []sources.TraceSummary
	Searched    bool
	Problem     string
	FormError   string
}

func (s *Server) tracesPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := tracesData{Service: q.Get("service"), Operation: q.Get("operation"), MinDuration: q.Get("minDuration"), Limit: 20}
	status := http.StatusOK
	var minDur time.Duration
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			d.FormError, status = "limit must be a whole number from 1 to 200", http.StatusBadRequest
		} else {
			d.Limit = n
		}
	}
	if d.MinDuration != "" {
		v, err := time.ParseDuration(d.MinDuration)
		if err != nil || v < 0 {
			d.FormError, status = "minimum duration must be a duration such as 250ms or 1.5s", http.StatusBadRequest
		}
		minDur = v
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	svcs, err := s.cfg.Traces.Services(ctx)
	if err != nil {
		d.Problem = s.jaegerProblem()
		s.full(w, status, "traces", "Traces", d)
		return
	}
	d.Services = svcs
	if d.Service == "" && len(svcs) > 0 {
		d.Service = "gateway"
		if !slices.Contains(svcs, "gateway") {
			d.Service = svcs[0]
		}
	}
	if d.Service != "" {
		d.Operations, _ = s.cfg.Traces.Operations(ctx, d.Service)
	}
	if d.FormError == "" && d.Service != "" {
		d.Searched = true
		d.Results, err = s.cfg.Traces.Search(ctx, sources.TraceQuery{Service: d.Service, Operation: d.Operation, MinDuration: minDur, Limit: d.Limit})
		if err != nil {
			d.Problem = s.jaegerProblem()
		}
	}
	s.full(w, status, "traces", "Traces", d)
}

func (s *Server) jaegerProblem() string {
	if n := s.cfg.JaegerNotice(); n != "" {
		return n
	}
	return "Jaeger's query API does not answer; traces are shown once it is up."
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{16,32}$`)

type traceData struct {
	ID          string
	Trace       *traceview.Trace
	Spans       []spanView
	NotYet      bool
	Problem     string
	JaegerUIURL string
}

type spanView struct {
	*traceview.Span
	Left, Width float64 // percent of the trace
	Attrs       [][2]string
}

func (s *Server) tracePage(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	d := traceData{ID: id}
	if s.cfg.JaegerUIURL != "" {
		d.JaegerUIURL = strings.TrimRight(s.cfg.JaegerUIURL, "/") + "/trace/" + id
	}
	if !traceIDPattern.MatchString(id) {
		d.Problem = "a trace id is 16 or 32 hexadecimal digits (the X-Trace-Id header of any response)"
		s.full(w, http.StatusBadRequest, "trace", "Trace", d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	t, err := s.cfg.Traces.Trace(ctx, id)
	switch {
	case errors.Is(err, traceview.ErrNotFound):
		// Spans reach Jaeger in batches, seconds after the request: the
		// page reloads itself until they are there.
		d.NotYet = true
		s.full(w, http.StatusNotFound, "trace", "Trace", d)
		return
	case err != nil:
		d.Problem = s.jaegerProblem()
		s.full(w, http.StatusBadGateway, "trace", "Trace", d)
		return
	}
	d.Trace = t
	total := float64(max(t.Duration, time.Microsecond))
	for _, sp := range t.Spans {
		v := spanView{Span: sp, Left: 100 * float64(sp.Offset) / total, Width: max(100*float64(sp.Duration)/total, 0.3)}
		for k, val := range sp.Attrs {
			v.Attrs = append(v.Attrs, [2]string{k, val})
		}
		sort.Slice(v.Attrs, func(i, j int) bool { return v.Attrs[i][0] < v.Attrs[j][0] })
		d.Spans = append(d.Spans, v)
	}
	s.full(w, http.StatusOK, "trace", "Trace "+id, d)
}
