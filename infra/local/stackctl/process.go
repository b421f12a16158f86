package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procSpec says how to run one long-lived process.
type procSpec struct {
	path       string
	args       []string
	env        []string
	cred       *syscall.Credential // run as this user (Postgres refuses root)
	stopSignal syscall.Signal      // Postgres: SIGINT is its fast shutdown
	// cgroup, when set, is the CPU cgroup the process runs in from its
	// first instruction; it is removed when the process has exited.
	cgroup string
}

// process is a supervised child. Each runs in its own process group so a
// stop reaches whatever it forked (a JVM, a postmaster's backends).
type process struct {
	name       string
	cmd        *exec.Cmd
	stopSignal syscall.Signal
	exited     chan struct{}
	err        error
	stopping   bool
	mu         sync.Mutex
}

// start launches spec; its output goes to the component's log and, in the
// foreground, to the terminal with a "[name]" prefix.
func (e *environment) start(name string, spec procSpec, echo bool) (*process, error) {
	logFile, err := os.OpenFile(e.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "---- %s started by stackctl\n", time.Now().Format(time.RFC3339))
	path, args := spec.path, spec.args
	if spec.cgroup != "" {
		// /proc/self/exe in the forked child is this very stackctl binary
		// (even if a rebuild replaced the file): it joins the cgroup, then
		// execs the real program under the same pid.
		path = "/proc/self/exe"
		args = append([]string{cgroupExecCommand, spec.cgroup, "--", spec.path}, spec.args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = spec.env
	cmd.Dir = e.repo
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: spec.cred}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	sig := spec.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	p := &process{name: name, cmd: cmd, stopSignal: sig, exited: make(chan struct{})}
	_ = os.WriteFile(e.path("run", name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		prefix := fmt.Sprintf("[%-18s] ", name)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if echo {
				e.outMu.Lock()
				fmt.Fprintln(e.out, prefix+line)
				e.outMu.Unlock()
			}
		}
		_, _ = io.Copy(logFile, pr) // a line too long for the scanner still lands in the log
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-copied
		logFile.Close()
		_ = os.Remove(e.path("run", name+".pid"))
		if spec.cgroup != "" {
			// Before exited closes, so a restart of the same component never
			// races this rmdir.
			if err := os.Remove(spec.cgroup); err != nil && !errors.Is(err, os.ErrNotExist) {
				e.say("%s: removing its cgroup: %v", name, err)
			}
		}
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *process) wasStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// stop signals the process group and waits up to grace before killing it.
func (p *process) stop(grace time.Duration) error {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	if !p.running() {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, p.stopSignal)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s did not stop within %s; killed", p.name, grace)
	}
}

// waitReady polls check until it succeeds, the process dies, or timeout
// passes; failures name the component and show its log tail.
func (e *environment) waitReady(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if p != nil && !p.running() {
			return fmt.Errorf("%s exited before it was ready (%v); last lines of %s:\n%s",
				p.name, p.err, e.logPath(p.name), tail(e.logPath(p.name), 20))
		}
		if time.Now().After(deadline) {
			name := "?"
			if p != nil {
				name = p.name
			}
			return fmt.Errorf("%s did not become ready within %s (last check: %v); last lines of %s:\n%s",
				name, timeout, last, e.logPath(name), tail(e.logPath(name), 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// killLeftovers stops processes recorded in pid files by a supervisor that
// is gone (kill -9, a crashed terminal).
func (e *environment) killLeftovers() (int, error) {
	entries, err := os.ReadDir(e.path("run"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, ent := range entries {
		name, ok := strings.CutSuffix(ent.Name(), ".pid")
		if !ok || name == "stackctl" {
			continue
		}
		pid := readPid(e.path("run", ent.Name()))
		if pid > 0 && alive(pid) {
			sig := syscall.SIGTERM
			if strings.HasPrefix(name, "pg-") {
				sig = syscall.SIGINT
			}
			_ = syscall.Kill(-pid, sig)
			waitGone(pid, 20*time.Second)
			killed++
		}
		_ = os.Remove(e.path("run", ent.Name()))
	}
	return killed, nil
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
