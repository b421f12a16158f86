package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/topology"
)

func TestScrapeTargetsCoverEveryProcessWithMetrics(t *testing.T) {
	stack, err := topology.Resolve("test", 100, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	groups := scrapeTargets(stack, map[string]extraTarget{"catalog-3": {job: "catalog", port: 8183}})
	got := map[string]string{} // instance -> "job address"
	for _, g := range groups {
		if len(g.Targets) != 1 {
			t.Errorf("%v: want one target per group, so each has its own instance label", g)
			continue
		}
		got[g.Labels["instance"]] = g.Labels["job"] + " " + g.Targets[0]
	}
	want := map[string]string{
		"catalog-1":  "catalog 127.0.0.1:8181",
		"catalog-2":  "catalog 127.0.0.1:8182",
		"catalog-3":  "catalog 127.0.0.1:8183",
		"orders-1":   "orders 127.0.0.1:8191",
		"orders-2":   "orders 127.0.0.1:8192",
		"worker-1":   "worker 127.0.0.1:8291",
		"worker-2":   "worker 127.0.0.1:8292",
		"gateway":    "gateway 127.0.0.1:9180", // the admin port: the public one serves /api/* only
		"jaeger":     "jaeger 127.0.0.1:8988",
		"prometheus": "prometheus 127.0.0.1:9190",
		"console":    "console 127.0.0.1:3100",
	}
	for instance, w := range want {
		if got[instance] != w {
			t.Errorf("%s: scraped as %q, want %q", instance, got[instance], w)
		}
	}
	// Postgres, memcached and Kafka have no exporter: scraping them would
	// only show a target that is always down.
	for instance := range got {
		if _, ok := want[instance]; !ok {
			t.Errorf("unexpected scrape target %s: %s", instance, got[instance])
		}
	}
}

func TestBuildProgressCountsCompiledPackages(t *testing.T) {
	path := t.TempDir() + "/jaeger-build.json"
	p := &buildProgress{path: path, status: jaegerBuildStatus{State: "building", PackagesTotal: 4}}
	// go build -v output, split at arbitrary points as a pipe delivers it.
	out := "go: downloading github.com/x/y v1.0.0\ninternal/goarch\nrun"
	out2 := "time\n# github.com/x/y\n./y.go:3:2: undefined: z\ngithub.com/x/y\n"
	for _, chunk := range []string{out, out2} {
		if _, err := fmt.Fprint(p, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.progress(); got != "75 %, 3 of 4 packages" {
		t.Errorf("progress = %q, want 3 of 4 packages (downloads and compiler errors are not packages)", got)
	}
	if err := p.finish(nil); err != nil {
		t.Fatal(err)
	}
	s, ok := readJaegerBuildStatus(path)
	if !ok || s.State != "done" || s.Percent != 100 || s.Finished == nil {
		t.Errorf("after a successful build the status file says %+v", s)
	}
	failed := p.finish(fmt.Errorf("exit status 1"))
	s, _ = readJaegerBuildStatus(path)
	if failed == nil || s.State != "failed" || !strings.Contains(s.Error, "exit status 1") {
		t.Errorf("after a failed build the status file says %+v", s)
	}
}
