// Package stacktest gives integration tests the running test stack: its
// endpoints (from the stack.json that stackctl writes) and control over its
// components, to break things on purpose.
//
// `make test` starts the stack and sets SCALESHOP_STACK; there a stack that
// is missing or not ready fails the test. A plain `go test ./...` without it
// skips integration tests with a message saying how to run them.
package stacktest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// EnvVar names the stack.json of the stack under test.
const EnvVar = "SCALESHOP_STACK"

// Stack is a running stack.
type Stack struct {
	*topology.Manifest
	exclusive bool // this test holds the stack exclusively
}

// Require returns the stack under test, skipping when none was asked for.
func Require(t testing.TB) *Stack {
	t.Helper()
	path := os.Getenv(EnvVar)
	if path == "" {
		t.Skipf("integration test: needs the real stack; run `make test` (or set %s to a running stack's stack.json)", EnvVar)
	}
	if !filepath.IsAbs(path) {
		// go test runs each package in its own directory.
		t.Fatalf("%s=%s: give an absolute path, each test package runs in its own directory", EnvVar, path)
	}
	m, err := topology.ReadManifest(path)
	if err != nil {
		t.Fatalf("%s=%s: the stack did not start: %v", EnvVar, path, err)
	}
	if m.Status != "ready" {
		t.Fatalf("the stack in %s is %q, not ready; see %s", path, m.Status, filepath.Join(m.StateDir, "logs"))
	}
	s := &Stack{Manifest: m}
	s.lockShared(t)
	return s
}

// Packages test in parallel against one stack. Every integration test holds
// a shared lock on the stack for its duration; a test that breaks a
// component (Stop, Kill) first takes it exclusively, so a drill never pulls
// Postgres or Kafka from under another package's test, and waits for
// running tests to finish instead.
//
// The lock is one flock per test process (reference-counted), so a test
// and its subtests never wait for each other; within a package, tests that
// run in parallel with a drill are the package author's call.
var procLock struct {
	sync.Mutex
	f         *os.File
	holders   int
	exclusive int
}

func (s *Stack) lockShared(t testing.TB) {
	t.Helper()
	procLock.Lock()
	defer procLock.Unlock()
	if procLock.f == nil {
		f, err := os.OpenFile(filepath.Join(s.StateDir, "run", "tests.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatalf("stack test lock: %v", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			f.Close()
			t.Fatalf("stack test lock: %v", err)
		}
		procLock.f = f
	}
	procLock.holders++
	// Registered first, so it runs after the test's other cleanups, such as
	// Restart: the stack is whole again before anyone else may use it.
	t.Cleanup(func() {
		procLock.Lock()
		defer procLock.Unlock()
		if s.exclusive {
			if procLock.exclusive--; procLock.exclusive == 0 {
				_ = syscall.Flock(int(procLock.f.Fd()), syscall.LOCK_SH)
			}
		}
		if procLock.holders--; procLock.holders == 0 {
			procLock.f.Close() // closing releases the lock
			procLock.f = nil
		}
	})
}

// Exclusive makes this test process the only one using the stack until the
// test that called Require ends. Stop and Kill call it; call it directly before any other
// disruption (pausing replica replay, flooding a queue).
func (s *Stack) Exclusive(t testing.TB) {
	t.Helper()
	procLock.Lock()
	defer procLock.Unlock()
	if s.exclusive {
		return
	}
	if procLock.exclusive == 0 {
		// Converting the lock drops the shared one first, so two processes
		// upgrading at once cannot deadlock.
		if err := syscall.Flock(int(procLock.f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatalf("stack exclusive lock: %v", err)
		}
	}
	procLock.exclusive++
	s.exclusive = true
}

// Stop stops a component gracefully, as an operator would.
func (s *Stack) Stop(t testing.TB, name string) {
	s.Exclusive(t)
	s.control(t, "stop", name)
}

// Kill kills a component with SIGKILL: a crash.
func (s *Stack) Kill(t testing.TB, name string) {
	s.Exclusive(t)
	s.control(t, "kill", name)
}

// Start starts a stopped component and returns once it is ready.
func (s *Stack) Start(t testing.TB, name string) { s.control(t, "start", name) }

// ScaleOut starts one more clone of service (e.g. "catalog"), in the
// gateway's pool once ready; ScaleIn drains and stops the newest extra one.
func (s *Stack) ScaleOut(t testing.TB, service string) { s.control(t, "scale-out", service) }

// ScaleOutWith is ScaleOut with options for that start (a CPU quota, extra
// environment).
func (s *Stack) ScaleOutWith(t testing.TB, service string, o stackcontrol.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := stackcontrol.Do(ctx, s.StateDir, "scale-out", service, o); err != nil {
		t.Fatalf("scale-out %s: %v", service, err)
	}
}

// StartWith (re)starts a component with options for that start only (a
// CPU quota, extra environment); Restart or a plain Start undoes them.
func (s *Stack) StartWith(t testing.TB, name string, o stackcontrol.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, _ = stackcontrol.Send(ctx, s.StateDir, "stop", name)
	if _, err := stackcontrol.Do(ctx, s.StateDir, "start", name, o); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

// Pid is the process id of a running component (or a clone scale-out
// started), from the pid file its supervisor keeps.
func (s *Stack) Pid(t testing.TB, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.StateDir, "run", name+".pid"))
	if err != nil {
		t.Fatalf("%s runs under no pid file of this stack: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	return pid
}

// ScaleIn undoes ScaleOut.
func (s *Stack) ScaleIn(t testing.TB, service string) { s.control(t, "scale-in", service) }

// Restart makes sure name runs again when the test ends, whatever happened.
func (s *Stack) Restart(t testing.TB, name string) {
	t.Cleanup(func() {
		if err := s.do("start", name); err != nil && !strings.Contains(err.Error(), "already running") {
			t.Errorf("restart %s: %v", name, err)
		}
	})
}

func (s *Stack) control(t testing.TB, action, name string) {
	t.Helper()
	if err := s.do(action, name); err != nil {
		t.Fatalf("%s %s: %v", action, name, err)
	}
}

func (s *Stack) do(action, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := stackcontrol.Send(ctx, s.StateDir, action, name)
	return err
}

// Eventually polls cond every 50 ms until it returns nil or timeout passes;
// async work is waited for this way, never with a sleep.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
