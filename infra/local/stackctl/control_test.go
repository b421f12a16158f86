package main

import "testing"

func TestEnvOverrides(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		fail bool
	}{
		{nil, false},
		{[]string{"HTTP_MAX_CONCURRENCY=4", "HTTP_SERVICE_TIME=5ms", "EMPTY="}, false},
		{[]string{"HTTP_MAX_CONCURRENCY"}, true},
		{[]string{"=4"}, true},
		{[]string{"BAD KEY=1"}, true},
	} {
		got, err := envOverrides(tc.in)
		if (err != nil) != tc.fail {
			t.Errorf("envOverrides(%q): err %v, want failure %v", tc.in, err, tc.fail)
		}
		if err == nil && len(got) != len(tc.in) {
			t.Errorf("envOverrides(%q) = %q, want every pair", tc.in, got)
		}
	}
}
