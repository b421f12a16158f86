package main

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestStartOverrides(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		cpus string
		want float64 // the quota asked for, when cpus is set
		fail bool
	}{
		{env: nil},
		{env: []string{"HTTP_MAX_CONCURRENCY=4", "CATALOG_CACHE_ENABLED=false", "EMPTY="}},
		{env: []string{"HTTP_MAX_CONCURRENCY"}, fail: true},
		{env: []string{"=4"}, fail: true},
		{env: []string{"BAD KEY=1"}, fail: true},
		{cpus: "1.0", want: 1},
		{cpus: "0.25", want: 0.25},
		{cpus: "0", want: 0}, // unbounded, on purpose
		{cpus: "-1", fail: true},
		{cpus: "half", fail: true},
		{cpus: "0.0001", fail: true}, // below what the kernel enforces
		{cpus: "1000", fail: true},   // more cores than the machine has
	} {
		q := url.Values{"env": tc.env}
		if tc.cpus != "" {
			q.Set("cpus", tc.cpus)
		}
		got, err := startOverrides(httptest.NewRequest("POST", "/components/catalog-1/start?"+q.Encode(), nil))
		if (err != nil) != tc.fail {
			t.Errorf("env %q cpus %q: err %v, want failure %v", tc.env, tc.cpus, err, tc.fail)
			continue
		}
		if err != nil {
			continue
		}
		if len(got.env) != len(tc.env) {
			t.Errorf("env %q: got %q, want every pair", tc.env, got.env)
		}
		switch {
		case tc.cpus == "" && got.cpus != nil:
			t.Errorf("no cpus asked for, got an override of %v", *got.cpus)
		case tc.cpus != "" && (got.cpus == nil || *got.cpus != tc.want):
			t.Errorf("cpus %q: got %v, want %v", tc.cpus, got.cpus, tc.want)
		}
	}
}
