package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/local/stackcontrol"
	"github.com/scaleshop/scaleshop/infra/stacktest"
	"github.com/scaleshop/scaleshop/infra/topology"
)

// Each catalog, orders and worker clone of the test stack is a small
// machine: the kernel holds it to its CPU quota, and it runs as many Ps as
// the quota has cores. What is checked here is read from the kernel
// (/proc/PID/cgroup and the cgroup's quota files), not from stackctl's
// intentions.

// kernelQuota reads the cgroup the process pid is in for CPU, and that
// cgroup's quota in cores (0 without one).
func kernelQuota(t *testing.T, pid int, stackCgroup string) (string, float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	// "1:cpu:/scaleshop/test-…/catalog-1" (v1), or "0::/…" (v2) when no v1
	// hierarchy has the cpu controller.
	var path string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if (f[0] == "0" && path == "") || strings.Contains(","+f[1]+",", ",cpu,") {
			path = f[2]
		}
	}
	if path == "" {
		t.Fatalf("pid %d: no cpu cgroup in /proc/%d/cgroup:\n%s", pid, pid, b)
	}
	dir := filepath.Join(stackCgroup, filepath.Base(path))
	if !strings.HasSuffix(dir, path) {
		return path, 0 // not one of this stack's cgroups
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		var quota, period float64
		if _, err := fmt.Sscan(string(raw), &quota, &period); err != nil {
			return path, 0 // "max 100000": no quota
		}
		return path, quota / period
	}
	quota := readNumber(t, filepath.Join(dir, "cpu.cfs_quota_us"))
	period := readNumber(t, filepath.Join(dir, "cpu.cfs_period_us"))
	if quota <= 0 {
		return path, 0
	}
	return path, quota / period
}

func readNumber(t *testing.T, path string) float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// gauges reads the named single-value gauges of a process's /metrics.
func gauges(t *testing.T, url string, names ...string) map[string]float64 {
	t.Helper()
	got := families(t, url)
	out := map[string]float64{}
	for _, name := range names {
		f, ok := got[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Fatalf("%s/metrics serves no single %s", url, name)
		}
		out[name] = f.GetMetric()[0].GetGauge().GetValue()
	}
	return out
}

// wantProcs is the GOMAXPROCS a process with a quota of cores must run.
func wantProcs(cores float64) float64 {
	if cores <= 0 {
		return -1 // the runtime's own choice; not checked
	}
	return max(1, float64(int(cores+0.999999)))
}

func TestEveryCloneRunsUnderItsCPUQuota(t *testing.T) {
	stack := stacktest.Require(t)
	if err := stack.RequireCPUQuotas(); err != nil {
		t.Fatal(err)
	}
	clones := 0
	for _, c := range stack.Components {
		if c.Kind != topology.Service {
			continue
		}
		pid := stack.Pid(t, c.Name)
		path, cores := kernelQuota(t, pid, stack.CPUQuota.Cgroup)
		port := c.Ports["http"]
		if c.Name == topology.Gateway {
			port = c.Ports["admin"] // its metrics belong on the admin port
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		got := gauges(t, url, "process_cpu_quota_cores", "go_sched_gomaxprocs_threads")
		if c.CPUs == 0 {
			// The gateway is not a clone: nothing bounds it, and it says so.
			if cores != 0 || got["process_cpu_quota_cores"] != 0 {
				t.Errorf("%s (cgroup %s) has a quota of %v cores (gauge %v); only clones have one",
					c.Name, path, cores, got["process_cpu_quota_cores"])
			}
			continue
		}
		clones++
		if !strings.HasSuffix(path, "/"+c.Name) || !strings.HasSuffix(filepath.Join(stack.CPUQuota.Cgroup, c.Name), path) {
			t.Errorf("%s (pid %d) is in cgroup %q, want its own below %s", c.Name, pid, path, stack.CPUQuota.Cgroup)
		}
		if cores != c.CPUs {
			t.Errorf("%s: the kernel enforces %v cores, the stack configured %v", c.Name, cores, c.CPUs)
		}
		if got["process_cpu_quota_cores"] != cores {
			t.Errorf("%s exports process_cpu_quota_cores %v, the kernel enforces %v", c.Name, got["process_cpu_quota_cores"], cores)
		}
		if want := wantProcs(cores); got["go_sched_gomaxprocs_threads"] != want {
			t.Errorf("%s runs GOMAXPROCS %v under %v cores, want %v", c.Name, got["go_sched_gomaxprocs_threads"], cores, want)
		}
	}
	if clones != 6 {
		t.Errorf("checked %d clones, the topology has 6 (catalog, orders and worker ×2)", clones)
	}
}

func TestAQuotaGivenForOneStartHoldsAndGoesWithTheClone(t *testing.T) {
	stack := stacktest.Require(t)
	if err := stack.RequireCPUQuotas(); err != nil {
		t.Fatal(err)
	}
	// Orders, not catalog: the gateway's own tests add a catalog clone and
	// expect it to be catalog-3.
	stack.ScaleOutWith(t, "orders", stackcontrol.Options{CPUs: "0.25"})
	name := "orders-3"
	pid := stack.Pid(t, name)
	path, cores := kernelQuota(t, pid, stack.CPUQuota.Cgroup)
	scaledIn := false
	t.Cleanup(func() {
		if !scaledIn {
			stack.ScaleIn(t, "orders")
		}
	})
	if cores != 0.25 {
		t.Fatalf("%s started with --cpus 0.25 runs in %s under %v cores", name, path, cores)
	}

	// scale-out gives the first extra clone the port after the last one
	// of the topology.
	var member string
	for _, c := range stack.Components {
		if c.Name == "orders-2" {
			member = "http://127.0.0.1:" + strconv.Itoa(c.Ports["http"]+1)
		}
	}
	got := gauges(t, member, "go_sched_gomaxprocs_threads", "process_cpu_quota_cores")
	if got["go_sched_gomaxprocs_threads"] != 1 || got["process_cpu_quota_cores"] != 0.25 {
		t.Errorf("%s at 0.25 cores reports GOMAXPROCS %v and a quota of %v", name, got["go_sched_gomaxprocs_threads"], got["process_cpu_quota_cores"])
	}
	// The gateway learns the member's quota from its readiness answers.
	stacktest.Eventually(t, 20*time.Second, "the gateway showing "+name+"'s quota", func() error {
		q, err := adminQuota(stack.Endpoints.GatewayAdminURL, "orders", member)
		if err != nil {
			return err
		}
		if q != 0.25 {
			return fmt.Errorf("/admin/backends shows %v cores for %s", q, member)
		}
		return nil
	})

	stack.ScaleIn(t, "orders")
	scaledIn = true
	dir := filepath.Join(stack.CPUQuota.Cgroup, name)
	stacktest.Eventually(t, 10*time.Second, name+"'s cgroup removed", func() error {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s still exists (%v)", dir, err)
		}
		return nil
	})
}

// adminQuota reads a member's CPU quota from the gateway's /admin/backends.
func adminQuota(adminURL, pool, member string) (float64, error) {
	resp, err := http.Get(adminURL + "/admin/backends")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Pools map[string]struct {
			Members []struct {
				URL   string   `json:"url"`
				Quota *float64 `json:"cpu_quota_cores"`
			} `json:"members"`
		} `json:"pools"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	for _, m := range out.Pools[pool].Members {
		if m.URL == member {
			if m.Quota == nil {
				return 0, fmt.Errorf("%s has reported no quota yet", member)
			}
			return *m.Quota, nil
		}
	}
	return 0, fmt.Errorf("the %s pool has no member %s", pool, member)
}
