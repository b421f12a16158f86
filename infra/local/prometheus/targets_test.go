package prometheus_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// What a user checks on Prometheus's /targets page: every process of the
// stack is there and up, and a clone started at runtime joins within a few
// scrapes.

type target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
	ScrapeURL string            `json:"scrapeUrl"`
}

func activeTargets(base string) ([]target, error) {
	var out struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []target `json:"activeTargets"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/targets?state=active", &out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("targets API answered status %q", out.Status)
	}
	return out.Data.ActiveTargets, nil
}

func getJSON(u string, v any) error {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// expectedInstances are the components that Prometheus scrapes, by name.
func expectedInstances() map[string]string {
	want := map[string]string{} // instance -> job
	for _, c := range topology.Native() {
		if job, _, ok := topology.Scrape(c); ok {
			want[c.Name] = job
		}
	}
	return want
}

// allUp says which of want are missing or not up.
func allUp(targets []target, want map[string]string) error {
	seen := map[string]target{}
	for _, t := range targets {
		seen[t.Labels["instance"]] = t
	}
	var problems []string
	for instance, job := range want {
		t, ok := seen[instance]
		switch {
		case !ok:
			problems = append(problems, instance+" is not a target")
		case t.Labels["job"] != job:
			problems = append(problems, fmt.Sprintf("%s has job %q, want %q", instance, t.Labels["job"], job))
		case t.Health != "up":
			problems = append(problems, fmt.Sprintf("%s (%s) is %s: %s", instance, t.ScrapeURL, t.Health, t.LastError))
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func TestPrometheusReportsEveryScrapeTargetUp(t *testing.T) {
	stack := stacktest.Require(t)
	base := stack.Endpoints.PrometheusURL
	if base == "" {
		t.Fatal("stack.json has no prometheus_url")
	}
	want := expectedInstances()
	// Up to a few scrapes: a component that a drill restarted just before
	// may not have been scraped since.
	stacktest.Eventually(t, 30*time.Second, "every scrape target up", func() error {
		targets, err := activeTargets(base)
		if err != nil {
			return err
		}
		return allUp(targets, want)
	})

	// The recording rules evaluate against those series: one sample of
	// job:up:sum per job, counting every instance of it.
	perJob := map[string]float64{}
	for _, job := range want {
		perJob[job]++
	}
	stacktest.Eventually(t, 30*time.Second, "job:up:sum recorded for every job", func() error {
		got, err := query(base, "job:up:sum")
		if err != nil {
			return err
		}
		for job, n := range perJob {
			if got[job] != n {
				return fmt.Errorf("job:up:sum{job=%q} = %v, want %v (all: %v)", job, got[job], n, got)
			}
		}
		return nil
	})
}

// query runs an instant query and returns each sample's value by its job label.
func query(base, expr string) (map[string]float64, error) {
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/query?query="+url.QueryEscape(expr), &out); err != nil {
		return nil, err
	}
	got := map[string]float64{}
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil {
			return nil, fmt.Errorf("%s: value %v: %w", expr, r.Value, err)
		}
		got[r.Metric["job"]] = v
	}
	return got, nil
}

func TestPrometheusOwnUIAnswers(t *testing.T) {
	stack := stacktest.Require(t)
	resp, err := http.Get(stack.Endpoints.PrometheusURL + "/graph")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Prometheus") {
		t.Fatalf("GET /graph: %s, %d bytes; want Prometheus's own page", resp.Status, len(body))
	}
}

func TestScaledOutCloneIsScrapedAndScaledInCloneIsNot(t *testing.T) {
	stack := stacktest.Require(t)
	stack.Exclusive(t) // another package's test must not see a third clone's share
	base := stack.Endpoints.PrometheusURL
	cloneState := func(targets []target) (string, bool) {
		for _, t := range targets {
			if t.Labels["job"] == "catalog" && !slices.Contains([]string{"catalog-1", "catalog-2"}, t.Labels["instance"]) {
				return t.Labels["instance"] + " " + t.Health, true
			}
		}
		return "", false
	}

	stack.ScaleOut(t, "catalog")
	scaledIn := false
	t.Cleanup(func() {
		if !scaledIn {
			stack.ScaleIn(t, "catalog")
		}
	})
	stacktest.Eventually(t, 20*time.Second, "the new clone scraped and up", func() error {
		targets, err := activeTargets(base)
		if err != nil {
			return err
		}
		if state, ok := cloneState(targets); !ok || !strings.HasSuffix(state, " up") {
			return fmt.Errorf("extra catalog clone: %q (listed: %v)", state, ok)
		}
		return nil
	})

	stack.ScaleIn(t, "catalog")
	scaledIn = true
	stacktest.Eventually(t, 20*time.Second, "the scaled-in clone no longer a target", func() error {
		targets, err := activeTargets(base)
		if err != nil {
			return err
		}
		if state, ok := cloneState(targets); ok {
			return fmt.Errorf("still a target: %s", state)
		}
		return nil
	})
}
