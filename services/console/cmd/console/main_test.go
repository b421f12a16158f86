package main

import (
	"strings"
	"testing"
)

func TestOverviewSource(t *testing.T) {
	for _, tc := range []struct {
		value       string
		fromTargets bool
		wantErr     string
	}{
		{"", false, ""},
		{"manifest", false, ""},
		{"prometheus", true, ""},
		{"kubernetes", false, "want manifest or prometheus"},
	} {
		s, _, err := readSettings(func(k string) string {
			if k == "OVERVIEW_SOURCE" {
				return tc.value
			}
			return ""
		})
		if tc.wantErr == "" && err != nil {
			t.Errorf("%q: %v", tc.value, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want one saying %q", tc.value, err, tc.wantErr)
		}
		if s.fromTargets != tc.fromTargets {
			t.Errorf("%q: from targets = %v, want %v", tc.value, s.fromTargets, tc.fromTargets)
		}
	}
}
