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
