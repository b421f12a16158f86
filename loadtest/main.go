// Command loadtest drives the scaleshop stack with open-model load and
// reports what it measured. See docs/loadtest.md.
//
//	go run ./loadtest run browse            a scenario from loadtest/scenarios (or a path)
//	go run ./loadtest validate [files]      check scenario files
//	go run ./loadtest experiment NAME       compare configurations of the stack
//	go run ./loadtest bench                 every experiment, then docs/benchmarks.md
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/scaleshop/scaleshop/infra/lifecycle"
)

func main() {
	lifecycle.Main("loadtest", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

const usage = `usage: loadtest <command> [flags]

commands:
  run SCENARIO        run a scenario (a name from loadtest/scenarios or a .yaml path)
  validate [FILE...]  check scenario files (default: every file in loadtest/scenarios)
  experiment NAME     run one experiment against the running stack; "list" lists them
  bench               run every experiment and regenerate docs/benchmarks.md

run 'loadtest <command> -h' for the flags of one command`

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], getenv, stdout)
	case "validate":
		return cmdValidate(args[1:], stdout)
	case "experiment":
		return cmdExperiment(ctx, args[1:], getenv, stdout)
	case "bench":
		return cmdBench(ctx, args[1:], getenv, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stdout, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
