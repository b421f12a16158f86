package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/internal/experiment"
)

func TestReplaceBlockKeepsOtherSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	others := "# Benchmarks\n\n## Gateway vs nginx\n\nnumbers\n"
	if err := os.WriteFile(path, []byte(others), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"first", "second"} {
		block := benchBegin + "\n" + run + "\n" + benchEnd + "\n"
		if err := replaceBlock(path, block); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if !strings.HasPrefix(got, others) || strings.Count(got, benchBegin) != 1 || strings.Contains(got, "first") || !strings.Contains(got, "second") {
		t.Errorf("file after two runs:\n%s", got)
	}
	// Text after the block (a later section) survives too.
	if err := os.WriteFile(path, []byte(got+"\n## Later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceBlock(path, benchBegin+"\nthird\n"+benchEnd+"\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.Contains(string(b), "## Later") || !strings.Contains(string(b), "third") || !strings.HasPrefix(string(b), others) {
		t.Errorf("file:\n%s", b)
	}
}

func TestToolBenchKeepsAFailedToolsOutput(t *testing.T) {
	tb := &toolBench{name: "t", title: "A tool", args: []string{"sh", "-c", "echo measured {stack}; exit 3"}}
	var progress strings.Builder
	tb.run(t.Context(), "/s/stack.json", &progress)
	md := tb.markdown()
	for _, want := range []string{"### A tool\n", "`sh -c echo measured $SCALESHOP_STACK; exit 3`", "**It failed**", "measured /s/stack.json"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(progress.String(), "measured /s/stack.json") {
		t.Errorf("the tool's output was not streamed: %q", progress.String())
	}
}

// The summary is rendered from the record alone: a capacity row carries its
// median and spread, every row its command, date, git describe and load
// average, and a record written and read back renders the same.
func TestSummaryIsRenderedFromTheRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.json")
	rec, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	st := &experiment.CapacityStat{Runs: []experiment.CapacityRun{{RPS: 410}, {RPS: 380}, {RPS: 400}}, Median: 400, Min: 380, Max: 410}
	rec.Experiments["clones"] = &recordedOutcome{
		runInfo: runInfo{Command: "go run ./loadtest experiment clones", Date: time.Date(2026, 12, 1, 23, 40, 0, 0, time.UTC), Git: "abc1234-dirty", LoadAvg: "3.10 2.00 1.50"},
		Outcome: &experiment.Outcome{Name: "clones", Metric: experiment.Capacity, Failures: []string{"3 clones hold 2.10× one clone"},
			Rows: []experiment.Row{{Config: "1 clone", Capacity: 400, CapacityStat: st}}},
	}
	if err := rec.write(path); err != nil {
		t.Fatal(err)
	}
	back, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	md := summaryMarkdown(back)
	for _, want := range []string{"| clones | 1 clone | 400/s | 380–410/s over 3 runs | **FAIL**: 3 clones hold 2.10× one clone |",
		"`go run ./loadtest experiment clones` | 2026-12-01 23:40 | `abc1234-dirty` | 3.10 2.00 1.50 |", "| kill-clone | – | not run yet |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nintro\n\n## Older\n\nold numbers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := replaceSummary(doc, md); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(doc)
	if got := string(b); strings.Count(got, summaryBegin) != 1 || strings.Index(got, summaryBegin) > strings.Index(got, "## Older") || !strings.Contains(got, "old numbers") {
		t.Errorf("doc:\n%s", got)
	}
}
