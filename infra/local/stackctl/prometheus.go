package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// Prometheus runs from Debian's package with its own configuration and
// data in the state directory. What it scrapes is a file of target groups
// (file-based service discovery) that the supervisor writes at start and
// rewrites on scale-out and scale-in; Prometheus watches the file, so a new
// clone is scraped from the next scrape on.

const prometheusBin = "/usr/bin/prometheus"

// The local data is bounded: the stack is a demonstration. Six hours of 2 s
// scrapes of fifteen processes is a few hundred MB; the size bound holds
// whatever the series count.
const (
	prometheusRetentionTime = "6h"
	prometheusRetentionSize = "512MB"
)

func (e *environment) prometheusDir(parts ...string) string {
	return e.path(append([]string{"prometheus"}, parts...)...)
}

func (e *environment) scrapeTargetsPath() string {
	return e.prometheusDir("targets", "scaleshop.json")
}

func (e *environment) prometheusLauncher(c topology.Component) launcher {
	addr := e.stack.Addr(c.Name, "http")
	config := e.prometheusDir("prometheus.yml")
	return launcher{
		prepare: func(context.Context) error {
			for _, d := range []string{e.prometheusDir("data"), e.prometheusDir("targets")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			return e.writePrometheusConfig(config)
		},
		spec: func() (procSpec, error) {
			return procSpec{
				path: prometheusBin,
				args: []string{
					"--config.file=" + config,
					"--storage.tsdb.path=" + e.prometheusDir("data"),
					"--storage.tsdb.retention.time=" + prometheusRetentionTime,
					"--storage.tsdb.retention.size=" + prometheusRetentionSize,
					"--web.listen-address=" + addr,
				},
				env: []string{"PATH=/usr/bin:/bin"},
			}, nil
		},
		ready:        func(ctx context.Context) error { return httpOK(ctx, "http://"+addr+"/-/ready") },
		readyTimeout: 60 * time.Second,
	}
}

func (e *environment) writePrometheusConfig(path string) error {
	dir := filepath.Join("infra", "local", "prometheus")
	return e.renderTemplate(path, filepath.Join(dir, "prometheus.yml.tmpl"), map[string]string{
		"Rules":      filepath.Join(e.repo, dir, "rules.yml"),
		"TargetsDir": filepath.Dir(e.scrapeTargetsPath()),
	})
}

// writeFileAtomic replaces path with b through a rename, so a reader (a
// watching Prometheus, the console) never sees half a file. The temporary
// name ends in .tmp, which no reader's pattern (*.json) matches.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// targetGroup is one entry of a file_sd file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// scrapeTargets lists a target group per component that serves metrics:
// the topology's, then extra (the clones scale-out started, by name). A
// stopped component stays listed, so Prometheus reports it down rather
// than forgetting it.
func scrapeTargets(stack *topology.Stack, extra map[string]extraTarget) []targetGroup {
	var out []targetGroup
	for _, c := range stack.Components {
		job, port, ok := topology.Scrape(c)
		if !ok {
			continue
		}
		out = append(out, targetGroup{
			Targets: []string{stack.Addr(c.Name, port)},
			Labels:  map[string]string{"job": job, "instance": c.Name},
		})
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		x := extra[name]
		out = append(out, targetGroup{
			Targets: []string{"127.0.0.1:" + strconv.Itoa(x.port)},
			Labels:  map[string]string{"job": x.job, "instance": name},
		})
	}
	return out
}

// extraTarget is a clone that scale-out started.
type extraTarget struct {
	job  string
	port int
}

// writeScrapeTargets replaces the target file atomically: a half-written
// file would drop every target until the next write.
func (s *supervisor) writeScrapeTargets() error {
	s.mu.Lock()
	groups := scrapeTargets(s.env.stack, s.scrapeExtras)
	s.mu.Unlock()
	path := s.env.scrapeTargetsPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// scrapeClone adds (or with remove, drops) a scale-out clone from the
// scrape targets.
func (s *supervisor) scrapeClone(job, name string, port int, remove bool) {
	s.mu.Lock()
	if s.scrapeExtras == nil {
		s.scrapeExtras = map[string]extraTarget{}
	}
	if remove {
		delete(s.scrapeExtras, name)
	} else {
		s.scrapeExtras[name] = extraTarget{job: job, port: port}
	}
	s.mu.Unlock()
	if err := s.writeScrapeTargets(); err != nil {
		s.env.say("cannot rewrite Prometheus's targets (%v): %s is not scraped", err, name)
	}
}

// quietDebianPrometheus stops and disables the service that Debian's
// prometheus package starts on install (where the init system lets it): it
// would listen on every interface at 9090, the port of the dev stack's own
// Prometheus, and scrape nothing of ours. Called only right after stackctl
// itself installed the package, so a Prometheus service that an operator
// set up on purpose is left alone.
func (e *environment) quietDebianPrometheus(ctx context.Context) {
	log := e.logPath("install-apt")
	var steps [][]string
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		steps = [][]string{{"systemctl", "disable", "--now", "prometheus.service"}}
	} else {
		// policy-rc.d may already have denied the start; stopping then
		// fails harmlessly, and disabling still keeps it off at boot.
		steps = [][]string{{"invoke-rc.d", "prometheus", "stop"}, {"update-rc.d", "prometheus", "disable"}}
	}
	for _, step := range steps {
		if !haveProgram(step[0]) {
			continue
		}
		out, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput()
		if f, ferr := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
			_, _ = f.Write(append([]byte("$ "+strings.Join(step, " ")+"\n"), out...))
			f.Close()
		}
		_ = err // the outcome is in the log; a port still taken is reported before start
	}
	e.say("stopped and disabled the system prometheus service that Debian's package starts (stackctl runs its own on %s)",
		e.stack.Addr(topology.PrometheusServer, "http"))
}
