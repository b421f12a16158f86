// Command stackctl installs, starts, supervises and stops the native
// scaleshop stack: Postgres (catalog primary + replica, two orders servers),
// memcached ×2, Kafka (KRaft), Jaeger v2 and every Go service, on loopback.
//
//	stackctl up [--profile dev|test] [--detach]
//	stackctl down | clean | status | install [--profile ...]
//
// `make run` is `stackctl up`; `make test` runs a second stack with the test
// profile (ports +10000, its own state) so tests never touch a dev stack.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/scaleshop/scaleshop/infra/lifecycle"
	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == cgroupExecCommand {
		// The re-exec that puts a clone in its cgroup: it becomes the clone
		// and never returns, unless it fails.
		fmt.Fprintln(os.Stderr, "stackctl:", cgroupExec(os.Args[2:]))
		os.Exit(1)
	}
	lifecycle.Main("stackctl", func(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
		return run(ctx, os.Args[1:], getenv, stdout)
	})
}

const usage = `usage: stackctl <command> [--profile dev|test]

commands:
  install   install what is missing (Debian packages, Kafka jars, Jaeger build)
  up        install, initialise and start the whole stack; stays in the
            foreground (Ctrl-C stops it) unless --detach
  down      stop a stack of this profile left running
  clean     stop it and delete its state (databases, Kafka data, logs)
  status    show whether the stack runs and where, scale-out clones included
  help      print this
  stop NAME    stop one component of the running stack (graceful)
  kill NAME    kill one component with SIGKILL (a crash drill)
  start NAME [--env K=V ...] [--cpus N]   start a stopped component again; --env
               (repeatable) adds to a service's environment and --cpus sets a
               clone's CPU quota in cores (0: unbounded), for this start only
  scale-out catalog|orders [--env K=V ...] [--cpus N]   start one more clone and
               register it with the gateway
  scale-in catalog|orders    drain, remove and stop the newest extra clone
  pause-replay pg-catalog-replica    pause WAL replay on the replica (its lag grows)
  resume-replay pg-catalog-replica   resume it
  trace ID     print a trace from Jaeger as a waterfall (--json for JSON)`

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stdout, usage)
		return errors.New("no command")
	}
	cmd := args[0]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	profile := fs.String("profile", "dev", "dev (make run) or test (make test: ports +10000, own state)")
	detach := fs.Bool("detach", false, "up: return once the stack is ready, leaving it running in the background")
	child := fs.Bool("supervise", false, "internal: run as the detached supervisor")
	asJSON := fs.Bool("json", false, "trace: print JSON instead of the waterfall")
	var startOpts stackcontrol.Options
	fs.Func("env", "start, scale-out: K=V on top of the service's environment, this start only (repeatable)", func(kv string) error {
		startOpts.Env = append(startOpts.Env, kv)
		return nil
	})
	fs.StringVar(&startOpts.CPUs, "cpus", "", "start, scale-out: the clone's CPU quota in cores for this start (0: unbounded)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// Flags may also follow the component name: `stackctl stop catalog-1 --profile test`.
	var positional []string
	for fs.NArg() > 0 {
		positional = append(positional, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	env, err := newEnvironment(*profile, getenv, stdout)
	if err != nil {
		return err
	}
	switch cmd {
	case "install":
		return env.install(ctx)
	case "up":
		if *detach {
			return env.upDetached(ctx)
		}
		return env.up(ctx, *child)
	case "down":
		return env.down()
	case "clean":
		return env.clean()
	case "status":
		return env.status()
	case "stop", "kill", "start", "scale-out", "scale-in", "pause-replay", "resume-replay":
		if len(positional) != 1 {
			return fmt.Errorf("usage: stackctl %s NAME [--profile ...]", cmd)
		}
		return env.control(cmd, positional[0], startOpts)
	case "trace":
		if len(positional) != 1 {
			return fmt.Errorf("usage: stackctl trace TRACE_ID [--json] [--profile ...]")
		}
		return env.trace(ctx, positional[0], *asJSON)
	default:
		fmt.Fprintln(stdout, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
