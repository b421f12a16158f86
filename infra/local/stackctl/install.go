package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// install brings in what is missing, idempotently; every slow step says what
// it does and where its log is.
func (e *environment) install(ctx context.Context) error {
	if err := os.MkdirAll(e.path("logs"), 0o755); err != nil {
		return err
	}
	if err := e.installDebianPackages(ctx); err != nil {
		return err
	}
	if _, err := e.kafkaLibs(ctx); err != nil {
		return err
	}
	if _, err := e.jaegerBinary(ctx); err != nil {
		return err
	}
	return nil
}

// aptLockTimeout makes apt-get wait for another apt-get (a parallel
// install, unattended upgrades) instead of failing at once on its lock.
var aptLockTimeout = []string{"-o", "DPkg::Lock::Timeout=600"}

// installDebianPackages installs PostgreSQL 15, memcached, a JDK and
// Prometheus with apt-get when their programs are absent; the test profile
// adds Chromium, the headless browser the console's tests drive.
func (e *environment) installDebianPackages(ctx context.Context) error {
	want := []struct{ file, pkg string }{
		{filepath.Join(pgBin, "postgres"), "postgresql-15"},
		{"/usr/bin/pg_isready", "postgresql-client-15"},
		{"/usr/bin/memcached", "memcached"},
		{"java", "openjdk-17-jre-headless"},
		{"mvn", "maven"},
		{prometheusBin, "prometheus"}, // with promtool, which the rule tests run
	}
	if e.profile == "test" {
		want = append(want, struct{ file, pkg string }{"/usr/bin/chromium", "chromium"})
	}
	var missing []string
	for _, w := range want {
		if !haveProgram(w.file) {
			missing = append(missing, w.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing Debian packages %s: run as root or `apt-get install -y %s`",
			strings.Join(missing, " "), strings.Join(missing, " "))
	}
	log := e.logPath("install-apt")
	e.say("installing Debian packages %s (log: %s)", strings.Join(missing, " "), log)
	if err := e.runLogged(ctx, log, "apt-get update", nil, "apt-get", slices.Concat(aptLockTimeout, []string{"update"})...); err != nil {
		return err
	}
	args := slices.Concat(aptLockTimeout, []string{"install", "-y", "--no-install-recommends"}, missing)
	if err := e.runLogged(ctx, log, "apt-get install", []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", args...); err != nil {
		return err
	}
	if slices.Contains(missing, "prometheus") {
		e.quietDebianPrometheus(ctx)
	}
	return nil
}

func haveProgram(name string) bool {
	if filepath.IsAbs(name) {
		_, err := os.Stat(name)
		return err == nil
	}
	_, err := exec.LookPath(name)
	return err == nil
}

// kafkaLibs returns the folder holding the broker's jars, resolving them
// with Maven from infra/local/kafka/pom.xml the first time.
func (e *environment) kafkaLibs(ctx context.Context) (string, error) {
	pom := filepath.Join(e.repo, "infra", "local", "kafka", "pom.xml")
	version, err := matchInFile(pom, `<kafka.version>([^<]+)</kafka.version>`)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(e.cacheDir, "kafka-"+version, "libs")
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	log := e.logPath("install-kafka")
	e.say("resolving Apache Kafka %s jars with Maven (first time only, ~1 min; log: %s)", version, log)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	err = e.runLogged(ctx, log, "mvn dependency:copy-dependencies", nil, "mvn", "-B", "-f", pom,
		"dependency:copy-dependencies", "-DincludeScope=runtime", "-DoutputDirectory="+dir)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(done, []byte(version+"\n"), 0o644)
}

// runLogged runs a slow command with its output in log, printing a
// heartbeat every 30 s, and names the step and the log when it fails.
func (e *environment) runLogged(ctx context.Context, log, step string, extraEnv []string, name string, args ...string) error {
	return e.runLoggedTee(ctx, log, step, extraEnv, nil, append([]string{name}, args...)...)
}

// progressReporter is a tee that can say how far the command has come.
type progressReporter interface{ progress() string }

// runLoggedTee is runLogged that also copies the command's output to tee
// (when not nil); command is the program and its arguments.
func (e *environment) runLoggedTee(ctx context.Context, log, step string, extraEnv []string, tee io.Writer, command ...string) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Dir = e.repo
	var out io.Writer = f
	if tee != nil {
		out = io.MultiWriter(f, tee)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), extraEnv...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("install step %q failed (%v); see %s:\n%s", step, err, log, tail(log, 15))
			}
			e.say("%s done in %s", step, time.Since(start).Round(time.Second))
			return nil
		case <-tick.C:
			progress := ""
			if r, ok := tee.(progressReporter); ok {
				progress = ", " + r.progress()
			}
			e.say("still running %s (%s elapsed%s)", step, time.Since(start).Round(time.Second), progress)
		}
	}
}

func matchInFile(path, pattern string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(pattern).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no match for %s", path, pattern)
	}
	return string(m[1]), nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
