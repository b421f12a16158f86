package main

import (
	"strings"
	"testing"
)

// A bad capacity setting stops the start with the others' problems; a
// service that ran on without its back pressure would hide the typo.
func TestBadCapacitySettingsStopTheStart(t *testing.T) {
	env := map[string]string{"HTTP_MAX_CONCURRENCY": "lots", "HTTP_QUEUE_TIMEOUT": "-1s"}
	_, _, err := readSettings(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("readSettings accepted HTTP_MAX_CONCURRENCY=lots")
	}
	for _, key := range []string{"HTTP_MAX_CONCURRENCY", "HTTP_QUEUE_TIMEOUT"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the error does not name %s: %v", key, err)
		}
	}
	s, _, err := readSettings(func(k string) string { return map[string]string{"HTTP_MAX_CONCURRENCY": "8"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.capacity.MaxConcurrency != 8 || s.capacity.MaxQueue != 32 {
		t.Errorf("HTTP_MAX_CONCURRENCY=8 read as %+v", s.capacity)
	}
}
