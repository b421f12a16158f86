package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/scaleshop/scaleshop/infra/cpuquota"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// Every catalog, orders API and worker clone runs in a CPU cgroup of its
// own with a quota (CATALOG_CPUS, ORDERS_CPUS, WORKER_CPUS; --cpus for one
// start), so that on one machine each clone is a small machine: adding one
// adds the capacity of its quota until the shared cores run out.

// cgroupExecCommand is the hidden first argument of stackctl's re-exec of
// itself that moves a clone into its cgroup and then becomes the clone
// (cpuquota.Exec): the clone never runs a single instruction unbounded.
const cgroupExecCommand = "_cgroup-exec"

// cgroupExec is stackctl's side of that re-exec: args are the cgroup's
// directory, "--", then the program and its arguments.
func cgroupExec(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return fmt.Errorf("usage: stackctl %s CGROUP_DIR -- PROGRAM [ARGS...]", cgroupExecCommand)
	}
	return cpuquota.Exec(args[0], args[2:])
}

// cpuControl is what this supervisor can do about CPU quotas.
type cpuControl struct {
	stack  cpuquota.Group // this stack's cgroup, the parent of every clone's
	reason string         // why quotas are not enforced; "" when they are
}

func (c *cpuControl) enforced() bool { return c != nil && c.reason == "" }

// cgroupName is this stack's cgroup below the hierarchy's root. The state
// directory tells two stacks apart (two checkouts, or the dev and test
// profiles of one), so its hash is in the name; the profile is there for
// a person who lists the cgroups.
func (e *environment) cgroupName() string {
	sum := sha256.Sum256([]byte(e.stateDir))
	return filepath.Join("scaleshop", e.profile+"-"+hex.EncodeToString(sum[:])[:10])
}

// prepareCPU finds a cgroup hierarchy that controls CPU, makes this
// stack's cgroup in it and proves that a quota can be set there. When any
// step fails, the clones run unbounded and the reason is kept: stackctl
// says it, and the manifest records it for the experiments.
func (e *environment) prepareCPU() *cpuControl {
	h, err := cpuquota.Find()
	if err != nil {
		return &cpuControl{reason: "no cgroup hierarchy controls CPU here: " + err.Error()}
	}
	stack, err := h.Prepare(e.cgroupName())
	if err == nil {
		var probe cpuquota.Group
		if probe, err = stack.Child("probe", topology.DefaultCloneCPUs); err == nil {
			err = probe.Remove()
		}
	}
	if err != nil {
		return &cpuControl{reason: fmt.Sprintf("cgroup v%d at %s is not writable (stackctl runs as root there): %v", h.Version, h.Mount, err)}
	}
	return &cpuControl{stack: stack}
}

// sayCPU tells plainly whether the quotas hold.
func (e *environment) sayCPU() {
	if !e.cpu.enforced() {
		e.say("CPU quotas are NOT enforced: %s. The catalog, orders and worker clones run unbounded; "+
			"experiments that measure capacity refuse to run on this stack.", e.cpu.reason)
		return
	}
	var parts []string
	for _, b := range []string{"catalog", "orders", "worker"} {
		cores, _ := e.defaultCPUs(b)
		parts = append(parts, fmt.Sprintf("%s %s cores (CFS period %s)", b, cpuquota.FormatCores(cores), cpuquota.PeriodFor(cores)))
	}
	e.say("CPU quotas: one cgroup per clone under %s (cgroup v%d): %s",
		e.cpu.stack.Dir, e.cpu.stack.Hierarchy.Version, strings.Join(parts, ", "))
}

// defaultCPUs is the quota binary's clones start with: its variable
// (CATALOG_CPUS) or the topology's default; 0 for a binary without one.
func (e *environment) defaultCPUs(binary string) (float64, error) {
	key := topology.CPUsEnv(binary)
	if key == "" {
		return 0, nil
	}
	v := e.getenv(key)
	if v == "" {
		return topology.DefaultCloneCPUs, nil
	}
	cores, err := cpuquota.ParseCores(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%w", key, err)
	}
	return cores, nil
}

// checkCPUSettings reports every malformed quota variable at once, before
// anything starts.
func (e *environment) checkCPUSettings() error {
	var errs []error
	for _, b := range []string{"catalog", "orders", "worker"} {
		if _, err := e.defaultCPUs(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cloneCgroup gives the clone name a cgroup with a quota of cores and
// returns its directory, or "" when it runs unbounded (no quota asked for,
// or none can be enforced here).
func (e *environment) cloneCgroup(name string, cores float64) (string, error) {
	if cores == 0 || !e.cpu.enforced() {
		return "", nil
	}
	g, err := e.cpu.stack.Child(name, cores)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return g.Dir, nil
}

// removeCgroups deletes this stack's cgroups once its processes are gone
// (down, and before up, after a supervisor that died left them).
func (e *environment) removeCgroups() {
	h, err := cpuquota.Find()
	if err != nil {
		return
	}
	g := cpuquota.Group{Hierarchy: h, Dir: filepath.Join(h.Mount, e.cgroupName())}
	if err := g.Remove(); err != nil {
		e.say("%v", err)
	}
}

// quotaOf shows the quota the kernel enforces on a running process, read
// back from its cgroup rather than from what stackctl meant to set.
func quotaOf(pid int) string {
	if pid <= 0 || !alive(pid) {
		return "-"
	}
	q, err := cpuquota.Of(pid)
	if err != nil {
		return "?"
	}
	return cpuquota.FormatCores(q.Cores)
}

// extraPids lists the processes of this stack that are not in the
// topology (clones added by scale-out), by name.
func (e *environment) extraPids() map[string]int {
	out := map[string]int{}
	entries, err := os.ReadDir(e.path("run"))
	if err != nil {
		return out
	}
	for _, ent := range entries {
		name, ok := strings.CutSuffix(ent.Name(), ".pid")
		if _, known := e.stack.Get(name); !ok || known || name == "stackctl" {
			continue
		}
		if pid := readPid(e.path("run", ent.Name())); pid > 0 && alive(pid) {
			out[name] = pid
		}
	}
	return out
}
