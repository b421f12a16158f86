package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The gateway's peers, measured in the same run on the same clones: nginx
// (Debian's), Caddy 2.6 (Debian's; the best-known Go reverse proxy, the
// gateway's real peer) and the bare ReverseProxy floor (floor.go).

// startCaddy runs Debian's caddy as a round-robin load balancer with
// keepalive upstreams, its admin API and automatic HTTPS off: the
// configuration its documentation gives for a plain HTTP reverse proxy. It
// runs with its own defaults otherwise (GOGC included): Caddy as shipped.
func startCaddy(port int, clones []string, work string, core int) (*exec.Cmd, error) {
	var upstreams []string
	for _, c := range clones {
		upstreams = append(upstreams, strings.TrimPrefix(c, "http://"))
	}
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		lb_policy round_robin
		transport http {
			keepalive 2m
			keepalive_idle_conns 512
		}
	}
}
`, port, strings.Join(upstreams, " "))
	path := filepath.Join(work, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, fmt.Errorf("caddy is not installed (gateway/bench/run.sh installs Debian's): %w", err)
	}
	cmd := pinned(core, bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+work, "XDG_CONFIG_HOME="+work, "HOME="+work)
	log, err := os.Create(filepath.Join(work, "caddy.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, cmd.Start()
}

// Cores: the proxy under test runs on one and the load generator on the
// other, so neither takes CPU time the other needs while CPU per request is
// read (the clones, Postgres and memcached float; at these rates they use
// a small share). On a one-core machine nothing is pinned.
const (
	proxyCore     = 0
	generatorCore = 1
)

func pinning() bool { return runtime.NumCPU() > generatorCore }

// pinned is exec.Command(bin, args...) run on one core through taskset,
// which sets the affinity and execs bin under the same pid (so the pid is
// the proxy's, for its CPU time).
func pinned(core int, bin string, args ...string) *exec.Cmd {
	if !pinning() {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", strconv.Itoa(core), bin}, args...)...)
}

// pinSelf moves every thread of this process to core. Threads the Go
// runtime starts later are cloned from these and inherit the mask.
func pinSelf(core int) error {
	if !pinning() {
		return nil
	}
	var set unix.CPUSet
	set.Set(core)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("pinning the generator to core %d: %w", core, err)
		}
	}
	return nil
}
