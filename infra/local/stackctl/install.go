package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// installDebianPackages installs PostgreSQL 15, memcached and a JDK with
// apt-get when their programs are absent; the test profile adds Chromium,
// the headless browser the console's tests drive.
func (e *environment) installDebianPackages(ctx context.Context) error {
	want := []struct{ file, pkg string }{
		{filepath.Join(pgBin, "postgres"), "postgresql-15"},
		{"/usr/bin/pg_isready", "postgresql-client-15"},
		{"/usr/bin/memcached", "memcached"},
		{"java", "openjdk-17-jre-headless"},
		{"mvn", "maven"},
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
	if err := e.runLogged(ctx, log, "apt-get update", nil, "apt-get", "update"); err != nil {
		return err
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	return e.runLogged(ctx, log, "apt-get install", []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", args...)
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

// jaegerBinary returns the Jaeger v2 binary built from its Go module in
// infra/tools/jaeger, building it only when that module's version changed.
func (e *environment) jaegerBinary(ctx context.Context) (string, error) {
	mod := filepath.Join(e.repo, "infra", "tools", "jaeger")
	version, err := matchInFile(filepath.Join(mod, "go.mod"), `github.com/jaegertracing/jaeger (v[^\s]+)`)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(e.cacheDir, "jaeger-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(e.cacheDir, 0o755); err != nil {
		return "", err
	}
	log := e.logPath("install-jaeger")
	e.say("building Jaeger %s from its Go module (first time only: 6-14 min on 2 cores; log: %s)", version, log)
	tmp := bin + ".tmp"
	err = e.runLogged(ctx, log, "go build jaeger", nil, "go", "build", "-C", mod, "-trimpath",
		"-o", tmp, "github.com/jaegertracing/jaeger/cmd/jaeger")
	if err != nil {
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

// runLogged runs a slow command with its output in log, printing a
// heartbeat every 30 s, and names the step and the log when it fails.
func (e *environment) runLogged(ctx context.Context, log, step string, extraEnv []string, name string, args ...string) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.repo
	cmd.Stdout, cmd.Stderr = f, f
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
			e.say("still running %s (%s elapsed)", step, time.Since(start).Round(time.Second))
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
