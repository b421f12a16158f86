package httpserver

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/config"
)

func TestProfilerAddrIsOffByDefaultAndLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    string
		refused bool
	}{
		{"", "", false},
		{"127.0.0.1:6061", "127.0.0.1:6061", false},
		{"localhost:6061", "localhost:6061", false},
		{"[::1]:6061", "[::1]:6061", false},
		{"0.0.0.0:6061", "", true},
		{":6061", "", true},
		{"10.0.0.5:6061", "", true},
	} {
		env := config.New(func(k string) string {
			if k == "PPROF_ADDR" {
				return tc.value
			}
			return ""
		})
		got := ReadProfilerAddr(env)
		if refused := env.Err() != nil; refused != tc.refused {
			t.Errorf("PPROF_ADDR=%q: refused %v, want %v (%v)", tc.value, refused, tc.refused, env.Err())
		}
		if !tc.refused && got != tc.want {
			t.Errorf("PPROF_ADDR=%q: serves on %q", tc.value, got)
		}
	}
}
