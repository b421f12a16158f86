package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/loadtest/internal/experiment"
)

type experimentFlags struct {
	stack    string
	out      string
	durScale float64
	progress bool
	repeats  int
}

func (f *experimentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.stack, "stack", "", "stack.json of the running stack (default as for run)")
	fs.StringVar(&f.out, "out", "loadtest/reports", "directory for the JSON and HTML reports")
	fs.Float64Var(&f.durScale, "duration-scale", 1, "multiply every duration (a quick look)")
	fs.BoolVar(&f.progress, "progress", false, "print the per-second progress line")
	fs.IntVar(&f.repeats, "repeats", 3, "how many times each capacity is measured, in random order")
}

func cmdExperiment(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("experiment", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var f experimentFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var names []string
	for fs.NArg() > 0 {
		names = append(names, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(names) != 1 || names[0] == "list" {
		for _, e := range experiment.All() {
			fmt.Fprintf(stdout, "%-13s %s\n              %s\n", e.Name, e.Concept, e.Question)
		}
		if len(names) != 1 {
			return fmt.Errorf("usage: loadtest experiment NAME [flags]")
		}
		return nil
	}
	e, ok := experiment.Find(names[0])
	if !ok {
		return fmt.Errorf("no experiment %q; `loadtest experiment list` lists them", names[0])
	}
	outs, err := runExperiments(ctx, []*experiment.Experiment{e}, f, getenv, stdout)
	if err != nil {
		return err
	}
	if err := writeExperimentReports(outs, f.out, stdout); err != nil {
		return err
	}
	if o := outs[0]; !o.Passed {
		return fmt.Errorf("%s: not as expected: %s", o.Name, strings.Join(o.Failures, "; "))
	}
	return nil
}

func runExperiments(ctx context.Context, list []*experiment.Experiment, f experimentFlags, getenv func(string) string, stdout io.Writer) ([]*experiment.Outcome, error) {
	m, err := loadManifest(f.stack, getenv)
	if err != nil {
		return nil, fmt.Errorf("experiments drive a running stack (`make up`): %w", err)
	}
	s := &experiment.Stack{M: m, Log: stdout}
	opt := experiment.Options{DurationScale: f.durScale, Repeats: f.repeats}
	if f.progress {
		opt.Progress = stdout
	}
	var outs []*experiment.Outcome
	for _, e := range list {
		o, err := e.Run(ctx, s, opt)
		if err != nil {
			if len(list) == 1 || ctx.Err() != nil {
				return outs, err
			}
			// In a bench run one experiment that could not run (no CPU
			// quotas, a stack missing a part) is a failed verdict; the
			// others still run.
			fmt.Fprintf(stdout, "\n== experiment %s could not run: %v\n", e.Name, err)
			o = &experiment.Outcome{Name: e.Name, Concept: e.Concept, Question: e.Question, Metric: e.Metric,
				Command: "go run ./loadtest experiment " + e.Name, Started: time.Now(), Finished: time.Now(), Failures: []string{err.Error()}}
			outs = append(outs, o)
			continue
		}
		o.Text(stdout)
		outs = append(outs, o)
	}
	return outs, nil
}

func writeExperimentReports(outs []*experiment.Outcome, dir string, stdout io.Writer) error {
	if dir == "" || len(outs) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().Format("20060102-150405")
	name := outs[0].Name
	if len(outs) > 1 {
		name = "bench"
	}
	base := filepath.Join(dir, "experiment-"+name+"-"+stamp)
	b, err := json.MarshalIndent(outs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		return err
	}
	var page strings.Builder
	page.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>loadtest experiments</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}pre{background:#f7f7f7;padding:8px}</style></head><body><h1>Experiments</h1>`)
	for _, o := range outs {
		var t strings.Builder
		o.Text(&t)
		fmt.Fprintf(&page, "<h2>%s</h2>%s%s%s<pre>%s</pre>", htmlEscape(o.Name), o.Chart(), o.KneeChart(), o.Spectra(), htmlEscape(t.String()))
	}
	page.WriteString("</body></html>\n")
	if err := os.WriteFile(base+".html", []byte(page.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reports: %s.json  %s.html\n", base, base)
	return nil
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
