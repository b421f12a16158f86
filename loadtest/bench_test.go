package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	tb := &toolBench{name: "t", title: "A tool", issue: "9", args: []string{"sh", "-c", "echo measured {stack}; exit 3"}}
	var progress strings.Builder
	tb.run(t.Context(), "/s/stack.json", &progress)
	md := tb.markdown()
	for _, want := range []string{"### A tool (issue 9)", "`sh -c echo measured $SCALESHOP_STACK; exit 3`", "**It failed**", "measured /s/stack.json"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(progress.String(), "measured /s/stack.json") {
		t.Errorf("the tool's output was not streamed: %q", progress.String())
	}
}
