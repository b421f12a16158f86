package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A toolBench is one of the other issues' benchmarks. bench runs it as the
// user would, from its own command, so the generated block of
// docs/benchmarks.md carries its latest numbers next to the experiments.
type toolBench struct {
	name, title string
	args        []string // relative to the module root; "{stack}" is the manifest path
	output      string
	err         error
}

func toolBenches() []*toolBench {
	return []*toolBench{
		{name: "gateway", title: "Gateway vs Caddy vs nginx vs a bare ReverseProxy",
			args: []string{"bash", "gateway/bench/run.sh", "-rates", "1000,1500,2000,2500,3000,3500,4000", "-step", "5s"}},
		{name: "catalog", title: "Catalog read path: cache vs no cache vs a free cache",
			args: []string{"go", "run", "./services/catalog/cmd/catalogbench", "-stack", "{stack}"}},
		{name: "orders", title: "The order pipeline at steady rates: accept and accept→final as the client sees them",
			args: []string{"go", "run", "./services/orders/cmd/ordersbench", "-stack", "{stack}", "-rates", "100,200,300,400", "-duration", "30s"}},
		{name: "generator", title: "The load generator's own CPU per request, beside bare vegeta's",
			args: []string{"go", "run", "./loadtest", "generator-cost"}},
	}
}

// command is what the doc prints: the stack path stays symbolic.
func (t *toolBench) command() string {
	return strings.ReplaceAll(strings.Join(t.args, " "), "{stack}", "$SCALESHOP_STACK")
}

// run streams the tool's output to stdout as it runs and keeps it for the
// doc. A failed tool does not end bench: its error goes into the doc.
func (t *toolBench) run(ctx context.Context, stack string, stdout io.Writer) {
	args := make([]string, len(t.args))
	for i, a := range t.args {
		args[i] = strings.ReplaceAll(a, "{stack}", stack)
	}
	fmt.Fprintf(stdout, "==> %s: %s\n", t.name, t.command())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "SCALESHOP_STACK="+stack)
	cmd.Stdout = io.MultiWriter(stdout, &out)
	cmd.Stderr = io.MultiWriter(stdout, &out)
	t.err = cmd.Run()
	t.output = out.String()
}

func (t *toolBench) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n`%s`\n\n", t.title, t.command())
	if t.err != nil {
		fmt.Fprintf(&b, "**It failed** (%v); its output:\n\n", t.err)
	}
	fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimRight(t.output, "\n"))
	return b.String()
}

// absStack makes the manifest path absolute: the tools run from the module
// root, where a path relative to the caller's directory means nothing.
func absStack(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
