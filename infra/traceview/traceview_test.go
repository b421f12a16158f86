package traceview

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fixture is a trace shaped like an order's: gateway -> orders -> SQL on a
// shard, then producer -> consumer across Kafka (15 ms from publish to
// processing), with
// a failing catalog call under the worker.
const fixture = `{"data":[{"traceID":"t1","processes":{
 "p1":{"serviceName":"gateway","tags":[{"key":"service.instance.id","value":"gateway"}]},
 "p2":{"serviceName":"orders","tags":[{"key":"service.instance.id","value":"orders-2"}]},
 "p3":{"serviceName":"worker","tags":[{"key":"service.instance.id","value":"worker-1"}]}},
"spans":[
 {"spanID":"a","operationName":"POST /api/orders","references":[],"startTime":1000000,"duration":9000,"processID":"p1",
  "tags":[{"key":"span.kind","value":"server"},{"key":"scaleshop.member","value":"127.0.0.1:8092"}]},
 {"spanID":"b","operationName":"POST /api/orders","references":[{"refType":"CHILD_OF","spanID":"a"}],"startTime":1001000,"duration":7000,"processID":"p2",
  "tags":[{"key":"span.kind","value":"server"},{"key":"scaleshop.shard","value":5},{"key":"server.address","value":"127.0.0.1"},{"key":"db.query.text","value":"WITH k AS (SELECT 1),\n\t\to AS (INSERT"}]},
 {"spanID":"c","operationName":"orders.placed publish","references":[{"refType":"CHILD_OF","spanID":"b"}],"startTime":1020000,"duration":3000,"processID":"p2",
  "tags":[{"key":"span.kind","value":"producer"},{"key":"messaging.destination.name","value":"orders.placed"}]},
 {"spanID":"d","operationName":"orders.placed process","references":[{"refType":"CHILD_OF","spanID":"c"}],"startTime":1035000,"duration":20000,"processID":"p3",
  "tags":[{"key":"span.kind","value":"consumer"},{"key":"messaging.destination.partition.id","value":"3"}]},
 {"spanID":"e","operationName":"POST /internal/reservations","references":[{"refType":"CHILD_OF","spanID":"d"}],"startTime":1036000,"duration":5000,"processID":"p3",
  "tags":[{"key":"span.kind","value":"client"},{"key":"otel.status_code","value":"ERROR"},{"key":"otel.status_description","value":"reserve failed"},{"key":"http.response.status_code","value":503}],
  "logs":[{"timestamp":1041000,"fields":[{"key":"event","value":"exception"},{"key":"exception.message","value":"catalog POST /internal/reservations: 503 Service Unavailable"}]}]}
]}]}`

func fixtureServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/traces/t1" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(fixture))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBuildLinksParentsAndMeasuresTheKafkaHop(t *testing.T) {
	tr, err := (&Client{BaseURL: fixtureServer(t).URL}).Get(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Roots) != 1 || tr.Roots[0].SpanID != "a" {
		t.Fatalf("roots %v, want the gateway span only", tr.Roots)
	}
	var order []string
	for _, s := range tr.Spans {
		order = append(order, s.SpanID)
	}
	if got := strings.Join(order, ""); got != "abcde" {
		t.Fatalf("depth-first order %q, want abcde", got)
	}
	consumer := tr.Spans[3]
	if consumer.Depth != 3 || consumer.QueueTime != 15*time.Millisecond || consumer.Instance != "worker-1" {
		t.Fatalf("consumer span %+v: want depth 3, Kafka hop 15ms, instance worker-1", consumer)
	}
	if !tr.Spans[4].Error {
		t.Fatal("the span with otel.status_code=ERROR is not marked as an error")
	}
	if tr.Duration != 55*time.Millisecond {
		t.Fatalf("trace duration %v, want 55ms", tr.Duration)
	}
	if strings.Join(tr.Services, ",") != "gateway,orders,worker" {
		t.Fatalf("services %v", tr.Services)
	}
}

func TestRenderShowsTheWaterfall(t *testing.T) {
	tr, err := (&Client{BaseURL: fixtureServer(t).URL}).Get(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Render(&out, tr, Options{Color: true, BarWidth: 20}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2+5 {
		t.Fatalf("want a header, a column line and 5 spans:\n%s", out.String())
	}
	for _, want := range []struct {
		line int
		text string
	}{
		{2, "gateway  POST /api/orders"},
		{2, "member=127.0.0.1:8092"},
		{3, "  orders/orders-2  POST /api/orders"},
		{3, "shard=5"},
		{3, "query.text=WITH k AS (SELECT 1), o AS (INSERT"},
		{5, "[Kafka hop 15.000ms after publish began]"},
		{5, "partition.id=3"},
		{6, "\x1b[31m"},
		{6, "!"},
		{6, "status_code=503"},
		{6, `error="catalog POST /internal/reservations: 503 Service Unavailable"`},
		{3, "server.address=127.0.0.1"},
	} {
		if !strings.Contains(lines[want.line], want.text) {
			t.Errorf("line %d %q lacks %q", want.line, lines[want.line], want.text)
		}
	}
	// The consumer starts at 35 ms of 55 ms: its bar begins past the middle.
	bar := string([]rune(lines[5])[23:43])
	if !strings.HasPrefix(bar, strings.Repeat("·", 12)) || !strings.Contains(bar, "█") {
		t.Errorf("consumer bar %q is not placed on the timeline", bar)
	}
}

func TestRenderJSONAndNotFound(t *testing.T) {
	c := &Client{BaseURL: fixtureServer(t).URL}
	tr, err := c.Get(context.Background(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := RenderJSON(&out, tr); err != nil {
		t.Fatal(err)
	}
	var back struct {
		TraceID string `json:"trace_id"`
		Spans   []struct {
			SpanID    string `json:"span_id"`
			Depth     int    `json:"depth"`
			QueueTime int64  `json:"queue_time_ns"`
		} `json:"spans"`
	}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.TraceID != "t1" || len(back.Spans) != 5 || back.Spans[3].QueueTime != int64(15*time.Millisecond) {
		t.Fatalf("json %+v", back)
	}
	if _, err := c.Get(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown trace: %v, want ErrNotFound", err)
	}
}
