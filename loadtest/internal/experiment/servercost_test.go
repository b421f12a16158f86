package experiment

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeCatalog serves /metrics the way a catalog does: the CPU counter
// always, the queries histogram only once an API request has come in.
func fakeCatalog(t *testing.T, cpu *float64, queries, requests *int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", *cpu)
		if *requests > 0 {
			fmt.Fprintf(w, "# TYPE catalog_db_queries_per_request histogram\n"+
				"catalog_db_queries_per_request_bucket{route=\"/api/products/:id\",le=\"+Inf\"} %d\n"+
				"catalog_db_queries_per_request_sum{route=\"/api/products/:id\"} %d\n"+
				"catalog_db_queries_per_request_count{route=\"/api/products/:id\"} %d\n", *requests, *queries, *requests)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestServerCostIsTheDifferencePerRequest(t *testing.T) {
	cpu, queries, requests := 1.5, 0, 0
	srv := fakeCatalog(t, &cpu, &queries, &requests)
	before, err := readCostSample(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cpu, queries, requests = 1.7, 250, 1000 // 0.2 s of CPU for 1000 requests
	after, err := readCostSample(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := costBetween(before, after)
	if c == nil || c.Requests != 1000 || c.DBQueriesPerRequest != 0.25 || c.CPUPerRequestUS < 199.9 || c.CPUPerRequestUS > 200.1 {
		t.Fatalf("cost = %+v; want 1000 requests, 0.25 statements and 200 µs each", c)
	}
	if costBetween(after, after) != nil {
		t.Error("no request in between, yet a cost per request")
	}
}

func TestServerCostNeedsAProcessCPUCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE up gauge\nup 1")
	}))
	defer srv.Close()
	if _, err := readCostSample(t.Context(), srv.URL); err == nil || !strings.Contains(err.Error(), "process_cpu_seconds_total") {
		t.Fatalf("err = %v; want one naming the missing counter", err)
	}
}

func TestDBQueriesRatioAndAllHitCompare(t *testing.T) {
	rows := []Row{
		{Config: "cache on", Server: &ServerCost{DBQueriesPerRequest: 0.125}},
		{Config: "cache off", Server: &ServerCost{DBQueriesPerRequest: 1}},
	}
	if got := ratio(DBQueries, rows); got != "SQL statements per request: cache off / cache on = 8.00×" {
		t.Errorf("ratio = %q", got)
	}
	rows[0].Server.DBQueriesPerRequest = 0
	got := compare(rows, "SQL", func(r Row) float64 { return r.Server.DBQueriesPerRequest })
	if got != "SQL: cache off 1.00, cache on 0.00" {
		t.Errorf("compare with a zero base = %q", got)
	}
}
