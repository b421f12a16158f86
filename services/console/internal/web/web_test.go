package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/traceview"
	"github.com/scaleshop/scaleshop/services/console/internal/concepts"
	"github.com/scaleshop/scaleshop/services/console/internal/overview"
	"github.com/scaleshop/scaleshop/services/console/internal/sources"
)

type fakeOverview struct{ snap *overview.Snapshot }

func (f fakeOverview) Latest(context.Context, time.Duration) *overview.Snapshot { return f.snap }

type fakeControl struct {
	mu    sync.Mutex
	calls []string
	done  chan struct{}
}

func (f *fakeControl) Do(_ context.Context, action, name string) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, action+" "+name)
	f.mu.Unlock()
	defer close(f.done)
	return name + ": " + action + " done", nil
}

type fakeTraces struct {
	trace  *traceview.Trace
	search sources.TraceQuery
}

func (f *fakeTraces) Services(context.Context) ([]string, error) {
	return []string{"catalog", "gateway", "orders", "worker"}, nil
}
func (f *fakeTraces) Operations(context.Context, string) ([]string, error) {
	return []string{"GET /api/products/{id}"}, nil
}
func (f *fakeTraces) Search(_ context.Context, q sources.TraceQuery) ([]sources.TraceSummary, error) {
	f.search = q
	return []sources.TraceSummary{{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Root: "gateway: POST /api/orders", Spans: 9, Duration: 42 * time.Millisecond}}, nil
}
func (f *fakeTraces) Trace(_ context.Context, id string) (*traceview.Trace, error) {
	if f.trace == nil || f.trace.TraceID != id {
		return nil, traceview.ErrNotFound
	}
	return f.trace, nil
}

type fakeMetrics struct{}

func (fakeMetrics) Instant(context.Context, string) ([]sources.Sample, error) { return nil, nil }
func (fakeMetrics) Range(_ context.Context, q string, window, step time.Duration) ([]sources.Series, error) {
	now := time.Now()
	return []sources.Series{{Labels: map[string]string{"instance": "catalog-1"}, Points: []sources.Point{
		{T: now.Add(-time.Minute), V: 0.5}, {T: now, V: 0.75},
	}}}, nil
}

func snapshot() *overview.Snapshot {
	share1, share2 := 1.0, 0.0
	return &overview.Snapshot{Taken: time.Now(), Nodes: []*overview.Node{
		{Name: "gateway", Kind: "gateway", State: "up"},
		{Name: "catalog-1", Kind: "catalog", State: "up", Clone: &overview.Clone{Pool: "catalog", URL: "http://127.0.0.1:8081", GatewayState: "up", Share: &share1}},
		{Name: "catalog-2", Kind: "catalog", State: "down", Clone: &overview.Clone{Pool: "catalog", URL: "http://127.0.0.1:8082", GatewayState: "down", Share: &share2}},
		{Name: "pg-catalog-replica", Kind: "postgres", State: "up"},
	}}
}

func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Overview == nil {
		cfg.Overview = fakeOverview{snapshot()}
	}
	if cfg.Traces == nil {
		cfg.Traces = &fakeTraces{}
	}
	if cfg.GatewayURL == nil {
		cfg.GatewayURL, _ = url.Parse("http://127.0.0.1:1")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, u string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestACrossOriginActionIsRefusedAndNothingIsDone(t *testing.T) {
	ctl := &fakeControl{done: make(chan struct{})}
	srv := newServer(t, Config{Control: ctl})
	for name, header := range map[string]map[string]string{
		"fetch metadata": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"origin only":    {"Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			resp := post(t, srv.URL+"/break/actions?fragment=1", url.Values{"action": {"kill"}, "target": {"catalog-2"}}, header)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("cross-origin POST: %s %s, want 403 problem+json", resp.Status, resp.Header.Get("Content-Type"))
			}
		})
	}
	if len(ctl.calls) != 0 {
		t.Errorf("the supervisor was asked %v", ctl.calls)
	}
	if _, body := get(t, srv.URL+"/break/timeline"); !strings.Contains(body, "No action yet") {
		t.Errorf("the timeline shows an action after refused posts:\n%s", body)
	}
}

func TestASameOriginActionRunsAndLandsOnTheTimeline(t *testing.T) {
	ctl := &fakeControl{done: make(chan struct{})}
	srv := newServer(t, Config{Control: ctl})
	resp := post(t, srv.URL+"/break/actions?fragment=1", url.Values{"action": {"kill"}, "target": {"catalog-2"}},
		map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL})
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s, want 202", resp.Status)
	}
	select {
	case <-ctl.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the action never reached the supervisor")
	}
	if ctl.calls[0] != "kill catalog-2" {
		t.Errorf("supervisor got %v", ctl.calls)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, srv.URL+"/break/timeline")
		if strings.Contains(body, "catalog-2: kill done") && strings.Contains(body, `class="ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the timeline never showed the result:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAnActionThePageDoesNotOfferIsRefused(t *testing.T) {
	ctl := &fakeControl{done: make(chan struct{})}
	srv := newServer(t, Config{Control: ctl})
	for _, f := range []url.Values{
		{"action": {"kill"}, "target": {"pg-catalog-primary"}}, // stop, not kill, for data stores
		{"action": {"kill"}, "target": {"catalog-9"}},
		{"action": {"scale-out"}, "target": {"worker"}},
		{"action": {"rm -rf"}, "target": {"catalog-1"}},
	} {
		resp := post(t, srv.URL+"/break/actions", f, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: %s, want 400", f, resp.Status)
		}
	}
	if len(ctl.calls) != 0 {
		t.Errorf("the supervisor was asked %v", ctl.calls)
	}
}

func TestBreakItIsOffWithoutASupervisor(t *testing.T) {
	srv := newServer(t, Config{})
	resp := post(t, srv.URL+"/break/actions", url.Values{"action": {"kill"}, "target": {"catalog-2"}}, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST without control: %s, want 404", resp.Status)
	}
	_, body := get(t, srv.URL+"/break")
	if !strings.Contains(body, "Break it is off") || !strings.Contains(body, "disabled") {
		t.Error("the page does not say Break it is off, or its buttons are enabled")
	}
}

func TestTheOverviewShowsEachNodesStateAndShare(t *testing.T) {
	srv := newServer(t, Config{})
	code, body := get(t, srv.URL+"/overview/live")
	if code != http.StatusOK {
		t.Fatalf("GET /overview/live: %d", code)
	}
	for _, want := range []string{
		`data-node="catalog-1" data-state="up" data-share="1.000"`,
		`data-node="catalog-2" data-state="down" data-share="0.000"`,
		`gateway: down`,
		`data-all-up="false"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
}

// TestTheOverviewDrawsAClustersPods: on a cluster the nodes are pods
// (gateway-8d7f-x, two of them in prod), drawn where their binary's box
// goes.
func TestTheOverviewDrawsAClustersPods(t *testing.T) {
	snap := &overview.Snapshot{Taken: time.Now(), Nodes: []*overview.Node{
		{Name: "gateway-8d7f-x", Kind: "gateway", State: "up"},
		{Name: "gateway-8d7f-y", Kind: "gateway", State: "up"},
		{Name: "jaeger-6b-q", Kind: "jaeger", State: "up"},
		{Name: "prometheus-5c-r", Kind: "prometheus", State: "up"},
		{Name: "console-7d-s", Kind: "console", State: "up"},
	}}
	srv := newServer(t, Config{Overview: fakeOverview{snap}})
	_, body := get(t, srv.URL+"/overview/live")
	for _, n := range snap.Nodes {
		if !strings.Contains(body, `data-node="`+n.Name+`"`) {
			t.Errorf("overview lacks %s", n.Name)
		}
	}
}

func TestConceptsHasThirteenPanelsWithNumbersAndCode(t *testing.T) {
	srv := newServer(t, Config{Metrics: fakeMetrics{}})
	_, body := get(t, srv.URL+"/concepts")
	if got := strings.Count(body, `<article class="panel"`); got != 13 {
		t.Errorf("%d panels, want 13", got)
	}
	for _, c := range concepts.All() {
		if !strings.Contains(body, `data-concept="`+c.ID+`"`) || !strings.Contains(body, c.Code[0]) {
			t.Errorf("panel %s or its code path %s is missing", c.ID, c.Code[0])
		}
	}
	if !strings.Contains(body, "<polyline") || !strings.Contains(body, "catalog-1 <b>75 %</b>") {
		t.Error("panels lack their chart or their live value")
	}
}

func TestATraceShowsAsAWaterfallWithItsKafkaHop(t *testing.T) {
	start := time.Now()
	producer := &traceview.Span{SpanID: "b", Service: "orders", Operation: "orders.placed publish", Kind: "producer", Start: start, Duration: 5 * time.Millisecond, Depth: 1, Offset: time.Millisecond}
	consumer := &traceview.Span{SpanID: "c", ParentID: "b", Service: "worker", Operation: "orders.placed process", Kind: "consumer", Start: start.Add(9 * time.Millisecond), Duration: 20 * time.Millisecond, Depth: 2, Offset: 9 * time.Millisecond, QueueTime: 8 * time.Millisecond, Attrs: map[string]string{"scaleshop.shard": "3"}}
	root := &traceview.Span{SpanID: "a", Service: "gateway", Operation: "POST /api/orders", Start: start, Duration: 30 * time.Millisecond}
	tr := &traceview.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Duration: 30 * time.Millisecond, Services: []string{"gateway", "orders", "worker"},
		Roots: []*traceview.Span{root}, Spans: []*traceview.Span{root, producer, consumer}}
	srv := newServer(t, Config{Traces: &fakeTraces{trace: tr}, JaegerUIURL: "http://127.0.0.1:16686"})

	code, body := get(t, srv.URL+"/traces/4bf92f3577b34da6a3ce929d0e0e4736")
	if code != http.StatusOK {
		t.Fatalf("GET trace: %d", code)
	}
	for _, want := range []string{`data-service="gateway"`, `data-service="worker"`, "Kafka hop: 8.0 ms", "scaleshop.shard", "http://127.0.0.1:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"} {
		if !strings.Contains(body, want) {
			t.Errorf("trace page lacks %q", want)
		}
	}

	code, body = get(t, srv.URL+"/traces/00000000000000000000000000000001")
	if code != http.StatusNotFound || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("a trace Jaeger does not have yet: %d, want 404 and a page that reloads itself", code)
	}
	if code, _ = get(t, srv.URL+"/traces/not-a-trace"); code != http.StatusBadRequest {
		t.Errorf("a malformed trace id: %d, want 400", code)
	}
}

func TestTraceSearchPassesTheFormAndRefusesABadDuration(t *testing.T) {
	tr := &fakeTraces{}
	srv := newServer(t, Config{Traces: tr})
	code, body := get(t, srv.URL+"/traces?service=orders&operation=POST+%2Fapi%2Forders&minDuration=50ms&limit=5")
	if code != http.StatusOK {
		t.Fatalf("search: %d", code)
	}
	want := sources.TraceQuery{Service: "orders", Operation: "POST /api/orders", MinDuration: 50 * time.Millisecond, Limit: 5}
	if tr.search != want {
		t.Errorf("Jaeger was asked %+v, want %+v", tr.search, want)
	}
	if !strings.Contains(body, `href="/traces/4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Error("the result does not link to its trace page")
	}
	tr.search = sources.TraceQuery{}
	code, body = get(t, srv.URL+"/traces?service=orders&minDuration=soon")
	if code != http.StatusBadRequest || !strings.Contains(body, "minimum duration") {
		t.Errorf("bad duration: %d, want 400 naming the field", code)
	}
	if tr.search != (sources.TraceQuery{}) {
		t.Errorf("a bad form still searched: %+v", tr.search)
	}
}

func TestTheAPIGoesToTheGatewayUnchangedAndA304IsMarked(t *testing.T) {
	var seen http.Header
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("ETag", `"p1-v3"`)
		w.Header().Set("X-Served-By", "catalog-1")
		if r.Header.Get("If-None-Match") == `"p1-v3"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": 1, "path": r.URL.RequestURI()})
	}))
	defer gw.Close()
	gwURL, _ := url.Parse(gw.URL)
	srv := newServer(t, Config{GatewayURL: gwURL})

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/products/1?x=1", nil)
	req.Header.Set("If-None-Match", `"p1-v3"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("X-Console-Upstream-Status") != "304" || resp.Header.Get("X-Served-By") != "catalog-1" {
		t.Errorf("conditional GET through the console: %s, headers %v", resp.Status, resp.Header)
	}
	if seen.Get("If-None-Match") != `"p1-v3"` || seen.Get("X-Forwarded-For") != "" {
		t.Errorf("the gateway saw headers %v; want the browser's own, no X-Forwarded-For", seen)
	}
	code, body := get(t, srv.URL+"/api/products/1?x=1")
	if code != http.StatusOK || !strings.Contains(body, `"/api/products/1?x=1"`) {
		t.Errorf("plain GET: %d %s", code, body)
	}
}
