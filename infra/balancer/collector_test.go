package balancer

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorExportsEveryMember(t *testing.T) {
	p, err := NewPool("catalog", []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Pick()
	if err != nil {
		t.Fatal(err)
	}
	m.Acquire().Done(Failure)

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector("gateway", p))
	want := `
# HELP gateway_member_failures_total Requests to the member that failed (connect error, timeout, 5xx).
# TYPE gateway_member_failures_total counter
gateway_member_failures_total{member="127.0.0.1:1",pool="catalog"} FAILS1
gateway_member_failures_total{member="127.0.0.1:2",pool="catalog"} FAILS2
`
	fails := map[string]string{"FAILS1": "0", "FAILS2": "0"}
	if strings.HasSuffix(m.URL.Host, ":1") {
		fails["FAILS1"] = "1"
	} else {
		fails["FAILS2"] = "1"
	}
	for k, v := range fails {
		want = strings.ReplaceAll(want, k, v)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gateway_member_failures_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(NewCollector("gateway", p)); n != 2*7 {
		t.Fatalf("%d series, want 7 per member", n)
	}
}
