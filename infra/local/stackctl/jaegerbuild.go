package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Jaeger is built from its Go module on a first run, which takes 10-20
// minutes on a busy 2-core machine. `stackctl up` does not wait for it: the
// build runs in the background at low CPU priority, the rest of the stack
// starts meanwhile, and Jaeger starts the moment its binary exists. The
// services' span queues hold what they produce until then and count what
// they drop (otel_spans_dropped_total). The build's progress is published in
// <state dir>/jaeger-build.json for the console and `stackctl status`.

// jaegerBuildStatus is jaeger-build.json.
type jaegerBuildStatus struct {
	// State is waiting (another stackctl holds the build lock), downloading
	// (resolving the module graph), building, done or failed.
	State string `json:"state"`
	// Percent estimates the build's progress: packages compiled of the
	// packages the binary needs. A package already in Go's build cache is
	// not compiled again, so a warm build jumps to 100.
	Percent       int        `json:"percent"`
	PackagesBuilt int        `json:"packages_built"`
	PackagesTotal int        `json:"packages_total"`
	Started       time.Time  `json:"started"`
	Finished      *time.Time `json:"finished,omitempty"`
	Error         string     `json:"error,omitempty"`
	Log           string     `json:"log"`
}

func (e *environment) jaegerBuildStatusPath() string { return e.path("jaeger-build.json") }

// jaegerBuild is the Jaeger binary, possibly still being built.
type jaegerBuild struct {
	bin  string
	done chan struct{}
	err  error
}

// startJaegerBuild returns at once; the build (when the binary is not
// cached) runs until it ends or ctx does.
func (e *environment) startJaegerBuild(ctx context.Context) *jaegerBuild {
	b := &jaegerBuild{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.bin, b.err = e.jaegerBinary(ctx)
	}()
	return b
}

// built reports whether the build has ended (either way).
func (b *jaegerBuild) built() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// wait returns the binary once it exists.
func (b *jaegerBuild) wait(ctx context.Context) (string, error) {
	select {
	case <-b.done:
		return b.bin, b.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// jaegerBinary returns the Jaeger v2 binary built from its Go module in
// infra/tools/jaeger, building it only when that module's version changed.
// Stacks of every profile share the binary; a lock makes a second stackctl
// wait for the first one's build instead of running its own.
func (e *environment) jaegerBinary(ctx context.Context) (string, error) {
	bin, err := e.jaegerBinaryPath()
	if err != nil {
		return "", err
	}
	mod := e.jaegerModule()
	log := e.logPath("install-jaeger")
	progress := &buildProgress{path: e.jaegerBuildStatusPath(),
		status: jaegerBuildStatus{State: "done", Percent: 100, Started: time.Now(), Log: log}}
	if _, err := os.Stat(bin); err == nil {
		progress.finish(nil)
		return bin, nil
	}
	if err := os.MkdirAll(e.cacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := e.lockJaegerBuild(ctx, bin+".lock", progress)
	if err != nil {
		return "", progress.finish(err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built by whoever held the lock
		progress.finish(nil)
		return bin, nil
	}

	pkg := "github.com/jaegertracing/jaeger/cmd/jaeger"
	progress.update(func(s *jaegerBuildStatus) { s.State, s.Percent = "downloading", 0 })
	e.say("building %s from its Go module at low priority (first time only: 5-20 min on 2 cores; log: %s)", filepath.Base(bin), log)
	var deps bytes.Buffer
	err = e.runLoggedTee(ctx, log, "go list jaeger", nil, &deps, lowPriority("go", "list", "-C", mod, "-deps", pkg)...)
	if err != nil {
		return "", progress.finish(err)
	}
	total := 0
	for line := range strings.Lines(deps.String()) {
		if isPackageLine(line) {
			total++
		}
	}
	progress.update(func(s *jaegerBuildStatus) { s.State, s.PackagesTotal = "building", total })
	tmp := bin + ".tmp"
	// -v prints each package as it is compiled: the progress counter.
	err = e.runLoggedTee(ctx, log, "go build jaeger", nil, progress,
		lowPriority("go", "build", "-C", mod, "-v", "-trimpath", "-o", tmp, pkg)...)
	if err == nil {
		err = os.Rename(tmp, bin)
	}
	if err != nil {
		return "", progress.finish(err)
	}
	progress.finish(nil)
	return bin, nil
}

func (e *environment) jaegerModule() string { return filepath.Join(e.repo, "infra", "tools", "jaeger") }

// jaegerBinaryPath is where the binary of the pinned Jaeger version lives
// once built: one per version, shared by every profile's stack.
func (e *environment) jaegerBinaryPath() (string, error) {
	version, err := matchInFile(filepath.Join(e.jaegerModule(), "go.mod"), `github.com/jaegertracing/jaeger (v[^\s]+)`)
	if err != nil {
		return "", err
	}
	return filepath.Join(e.cacheDir, "jaeger-"+version), nil
}

// lowPriority runs a command under nice, where the machine has it, so the
// services' own build and start-up get the CPU first.
func lowPriority(name string, args ...string) []string {
	if haveProgram("nice") {
		return append([]string{"nice", "-n", "10", name}, args...)
	}
	return append([]string{name}, args...)
}

// lockJaegerBuild takes the build lock, polling so that ctx can end the wait.
func (e *environment) lockJaegerBuild(ctx context.Context, path string, progress *buildProgress) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("jaeger build lock %s: %w", path, err)
		}
		if !said {
			said = true
			progress.update(func(s *jaegerBuildStatus) { s.State, s.Percent = "waiting", 0 })
			e.say("another stackctl is building Jaeger (lock %s); waiting for its build instead of starting a second one", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// buildProgress counts the package lines of `go build -v` (an io.Writer)
// and keeps jaeger-build.json up to date.
type buildProgress struct {
	path    string
	mu      sync.Mutex
	status  jaegerBuildStatus
	partial []byte
	written time.Time
}

func (p *buildProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		if isPackageLine(string(p.partial[:i])) {
			p.status.PackagesBuilt++
		}
		p.partial = p.partial[i+1:]
	}
	if t := p.status.PackagesTotal; t > 0 {
		p.status.Percent = min(99, p.status.PackagesBuilt*100/t)
	}
	// At most a write a second: a cold build prints thousands of lines.
	flush := time.Since(p.written) >= time.Second
	p.mu.Unlock()
	if flush {
		p.update(func(*jaegerBuildStatus) {})
	}
	return len(b), nil
}

// progress is the heartbeat's progress: "42 %, 810 of 1931 packages".
func (p *buildProgress) progress() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d %%, %d of %d packages", p.status.Percent, p.status.PackagesBuilt, p.status.PackagesTotal)
}

// isPackageLine tells an import path, as `go list` and `go build -v` print
// them, from the other lines of their output ("go: downloading ...",
// compiler errors): those have spaces or colons.
func isPackageLine(line string) bool {
	line = strings.TrimSpace(line)
	return line != "" && !strings.ContainsAny(line, " \t:")
}

func (p *buildProgress) update(change func(*jaegerBuildStatus)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(&p.status)
	p.written = time.Now()
	b, err := json.MarshalIndent(p.status, "", "  ")
	if err != nil {
		return
	}
	_ = writeFileAtomic(p.path, append(b, '\n')) // progress only: the build goes on without it
}

// finish records the build's end and returns err.
func (p *buildProgress) finish(err error) error {
	p.update(func(s *jaegerBuildStatus) {
		now := time.Now()
		s.Finished = &now
		if err != nil {
			s.State, s.Error = "failed", err.Error()
			return
		}
		s.State, s.Percent = "done", 100
	})
	return err
}

// readJaegerBuildStatus reads jaeger-build.json; ok is false when no run
// has written one.
func readJaegerBuildStatus(path string) (jaegerBuildStatus, bool) {
	var s jaegerBuildStatus
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}
