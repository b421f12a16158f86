package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// statusOf runs `stackctl status --profile test` on a state directory
// holding a manifest whose stack was ready, and pid files for the
// components named in alive (this test process stands in for them).
func statusOf(t *testing.T, supervisor bool, alive ...string) string {
	t.Helper()
	state := t.TempDir()
	dir := filepath.Join(state, "test")
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := topology.Manifest{Profile: "test", Status: "ready", Components: []topology.ManifestComponent{
		{Name: "catalog-1", Kind: topology.Service}, {Name: "kafka", Kind: topology.Kafka},
	}}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "stack.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if supervisor {
		alive = append(alive, "stackctl")
	}
	for _, name := range alive {
		if err := os.WriteFile(filepath.Join(dir, "run", name+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	getenv := func(k string) string {
		if k == "SCALESHOP_STATE_DIR" {
			return state
		}
		return ""
	}
	var out bytes.Buffer
	e, err := newEnvironment("test", getenv, &out)
	if err != nil {
		t.Fatal(err)
	}
	// With a supervisor, status also prints the address table; the
	// component lines come first.
	if err := e.status(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestStatusTellsWhatRuns(t *testing.T) {
	t.Run("a scale-out clone is listed", func(t *testing.T) {
		out := statusOf(t, true, "catalog-1", "kafka", "catalog-3")
		if !strings.Contains(out, "catalog-3") || !listedRunning("catalog-3", out) {
			t.Fatalf("status does not list the running scale-out clone catalog-3:\n%s", out)
		}
	})
	t.Run("a stopped component is not ready", func(t *testing.T) {
		out := statusOf(t, true, "catalog-1")
		first := strings.SplitN(out, "\n", 2)[0]
		if !strings.Contains(first, "1 stopped: kafka") {
			t.Fatalf("status line %q, want it to say kafka is stopped", first)
		}
	})
	t.Run("no supervisor is not ready", func(t *testing.T) {
		out := statusOf(t, false)
		first := strings.SplitN(out, "\n", 2)[0]
		if strings.Contains(first, "ready") || !strings.Contains(first, "not running") {
			t.Fatalf("status line %q for a stack whose supervisor is gone, want \"not running\"", first)
		}
	})
}

func listedRunning(name, out string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
			return f[1] == "running"
		}
	}
	return false
}

func TestHelpPrintsUsage(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("stackctl %s: %v", arg, err)
		}
		if !strings.Contains(out.String(), "usage: stackctl") {
			t.Fatalf("stackctl %s printed %q, want the usage", arg, out.String())
		}
	}
}
