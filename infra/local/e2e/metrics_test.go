package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/scrape"
	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// documentedMetric is one row of the table in docs/observability.md.
type documentedMetric struct {
	names     []string
	processes []string
	always    bool
	line      int
}

var backticked = regexp.MustCompile("`([a-z_]+)`")

func readMetricsDoc(t *testing.T) []documentedMetric {
	t.Helper()
	f, err := os.Open("../../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []documentedMetric
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		cells := strings.Split(sc.Text(), "|")
		// | metric | type | labels | process | appears | what |
		if len(cells) != 8 || !strings.Contains(cells[1], "`") {
			continue
		}
		m := documentedMetric{line: n, always: strings.TrimSpace(cells[5]) == "always"}
		for _, match := range backticked.FindAllStringSubmatch(cells[1], -1) {
			m.names = append(m.names, match[1])
		}
		procs := strings.TrimSpace(cells[4])
		if procs == "every process" {
			procs = "gateway, catalog, orders, worker"
		}
		for _, p := range strings.Split(procs, ",") {
			m.processes = append(m.processes, strings.TrimSpace(p))
		}
		out = append(out, m)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d metric rows in docs/observability.md; has the table's shape changed?", len(out))
	}
	return out
}

// servedFamilies returns the metric families every clone of a process serves.
func servedFamilies(t *testing.T, urls []string) map[string]bool {
	t.Helper()
	families := map[string]bool{}
	for _, u := range urls {
		got, err := scrape.Get(context.Background(), http.DefaultClient, u)
		if err != nil {
			t.Fatal(err)
		}
		for name := range got {
			families[name] = true
		}
	}
	return families
}

func TestEveryDocumentedMetricIsServed(t *testing.T) {
	stack := stacktest.Require(t)
	// Exercise the flows the metrics describe: a read and a whole order.
	if r := do(t, "GET", fmt.Sprintf("%s/api/products/%d", stack.Endpoints.GatewayURL, 1+rand.IntN(10000)), "", nil); r.status != 200 {
		t.Fatalf("product read: %d", r.status)
	}
	placeOrderAndWait(t, stack, fmt.Sprintf("metrics-%d", rand.Int64()))

	urls := map[string][]string{
		"gateway": {stack.Endpoints.GatewayAdminURL}, // its public port serves the API alone
		"catalog": stack.Endpoints.CatalogURLs,
		"orders":  stack.Endpoints.OrdersURLs,
		"worker":  stack.Endpoints.WorkerURLs,
	}
	served := map[string]map[string]bool{}
	for proc, u := range urls {
		served[proc] = servedFamilies(t, u)
		if !served[proc]["go_goroutines"] {
			t.Errorf("%s lacks the Go runtime metrics", proc)
		}
	}
	for _, m := range readMetricsDoc(t) {
		if !m.always {
			continue
		}
		for _, proc := range m.processes {
			got, ok := served[proc]
			if !ok {
				t.Errorf("docs/observability.md:%d names an unknown process %q", m.line, proc)
				continue
			}
			for _, name := range m.names {
				// A histogram is one family; its _bucket/_sum/_count are not.
				if !got[name] {
					t.Errorf("docs/observability.md:%d: %s does not serve %s", m.line, proc, name)
				}
			}
		}
	}
}
