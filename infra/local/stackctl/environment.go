package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// environment is everything stackctl knows about one profile's stack.
type environment struct {
	profile  string
	repo     string // repository root
	stateDir string // .state/<profile>: databases, Kafka data, logs, pids
	cacheDir string // ~/.cache/scaleshop: Kafka jars, the Jaeger binary
	stack    *topology.Stack
	getenv   func(string) string
	cpu      *cpuControl // set by up: whether clones get CPU quotas here

	outMu sync.Mutex
	out   io.Writer
}

func newEnvironment(profile string, getenv func(string) string, out io.Writer) (*environment, error) {
	offset := 0
	switch profile {
	case "dev":
	case "test":
		offset = 10000
		if v := getenv("SCALESHOP_TEST_PORT_OFFSET"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("SCALESHOP_TEST_PORT_OFFSET=%q is not a number", v)
			}
			offset = n
		}
	default:
		return nil, fmt.Errorf("unknown profile %q (want dev or test)", profile)
	}
	// The test profile ignores the dev port variables: a developer's
	// GATEWAY_PORT must not move the test stack onto the dev stack.
	portEnv := getenv
	if profile == "test" {
		portEnv = func(string) string { return "" }
	}
	stack, err := topology.Resolve(profile, offset, portEnv)
	if err != nil {
		return nil, err
	}
	repo, err := findRepo()
	if err != nil {
		return nil, err
	}
	state := getenv("SCALESHOP_STATE_DIR")
	if state == "" {
		state = filepath.Join(repo, ".state")
	}
	cache := getenv("SCALESHOP_CACHE_DIR")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no cache directory: set SCALESHOP_CACHE_DIR: %w", err)
		}
		cache = filepath.Join(base, "scaleshop")
	}
	return &environment{
		profile:  profile,
		repo:     repo,
		stateDir: filepath.Join(state, profile),
		cacheDir: cache,
		stack:    stack,
		getenv:   getenv,
		out:      out,
	}, nil
}

// findRepo walks up from the working directory to the module root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "infra", "topology", "topology.go")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run stackctl inside the scaleshop repository")
		}
		dir = parent
	}
}

func (e *environment) path(parts ...string) string {
	return filepath.Join(append([]string{e.stateDir}, parts...)...)
}

func (e *environment) logPath(name string) string { return e.path("logs", name+".log") }

func (e *environment) manifestPath() string { return e.path("stack.json") }

// say prints one progress line.
func (e *environment) say(format string, args ...any) {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	fmt.Fprintf(e.out, "%s [stackctl] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
