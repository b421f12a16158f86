// Package cpuquota makes a process a small machine: it puts the process in
// a Linux cgroup whose CPU quota the kernel enforces, and reads back the
// quota a process runs under, for its metrics, its GOMAXPROCS and the
// tables that show it.
//
// It supports both cgroup APIs: v2 (one unified hierarchy, the file
// cpu.max) and v1 (a hierarchy per controller, cpu.cfs_quota_us and
// cpu.cfs_period_us). The few files are written by hand rather than with a
// library such as containerd/cgroups: that one brings systemd's D-Bus
// client, eBPF and protobuf stats into the module for three file writes,
// and stackctl needs nothing of the rest.
package cpuquota

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Quota is the CPU time a process may use, in cores (0.5: half a second
// of CPU per second of wall time). Zero means no quota: the process may use
// every core.
type Quota struct {
	Cores  float64
	Period time.Duration // the CFS period the quota is enforced over; 0 without a quota
	Cgroup string        // the cgroup the process is in, as /proc/PID/cgroup names it
}

// Header on a service's /readyz answer is the quota the kernel enforces on
// it, in cores (0: none): the balancers that probe a member learn its size
// from the answer they already fetch.
const Header = "X-Cpu-Quota-Cores"

// Bounded reports whether a quota is in force.
func (q Quota) Bounded() bool { return q.Cores > 0 }

// String is "0.50 cores" or "unbounded".
func (q Quota) String() string {
	if !q.Bounded() {
		return "unbounded"
	}
	return FormatCores(q.Cores) + " cores"
}

// FormatCores prints a quota the way the tables show it: "0.50", or
// "unbounded" for 0.
func FormatCores(cores float64) string {
	if cores <= 0 {
		return "unbounded"
	}
	return strconv.FormatFloat(cores, 'f', 2, 64)
}

// The kernel enforces a quota per CFS period: a process that has used its
// quota·period of CPU in the current period is throttled until the next
// one starts. With the kernel's default period of 100 ms, a 0.5-core clone
// that takes a burst of requests runs for 50 ms and then stalls for 50 ms,
// and that stall lands in every request's latency (the p99 of a load test
// turns into the period). A 10 ms period keeps such stalls to a few
// milliseconds, and costs the scheduler little (it refills the quota 100
// times a second instead of 10).
//
// But a period must not be so short that its quota is less than one of
// the kernel's bandwidth slices (sched_cfs_bandwidth_slice_us, 5 ms) for
// each P of the process. A CPU running the group takes its runtime from
// the quota a slice at a time, so with a quota of 2 ms (0.2 cores at
// 10 ms) the first CPU takes all of it, and a thread of the same process on
// the other CPU is throttled while the process holds runtime it cannot
// use. Measured on a 0.2-core catalog clone at 10 ms: it used its whole
// quota at 250 pages/s (0.8 ms of CPU a page), missed 313/s in one run and
// held 375/s in the next, while two such clones held 900/s (3× one). At
// 50 ms it served 450/s in the same quota (0.44 ms a page). The period is
// no longer than that: a clone throttled in a 100 ms period stalls for up
// to 90 ms, and a lone 0.1-core clone then missed the p99 bound at rates
// two clones held, because the gateway sent each request to the clone not
// stalled (2.6× one); at 50 ms two held 2.00×.
const (
	DefaultPeriod = 10 * time.Millisecond
	// minQuota is the kernel's smallest quota per period (1 ms, v1 and v2);
	// a quota smaller than that at DefaultPeriod gets a longer period.
	minQuota  = time.Millisecond
	maxPeriod = time.Second
	// MinCores is the smallest quota PeriodFor can express.
	MinCores = float64(minQuota) / float64(maxPeriod)
	// defaultSlice is the kernel's sched_cfs_bandwidth_slice_us default.
	defaultSlice = 5 * time.Millisecond
)

// PeriodFor is the CFS period for a quota of cores on this machine:
// DefaultPeriod, or longer when the quota per period would be under the
// kernel's 1 ms or would not give each of the process's Ps (ceil(cores))
// a bandwidth slice.
func PeriodFor(cores float64) time.Duration {
	return periodFor(cores, bandwidthSlice(), runtime.NumCPU())
}

func periodFor(cores float64, slice time.Duration, cpus int) time.Duration {
	if cores <= 0 {
		return DefaultPeriod
	}
	runners := min(cpus, int(math.Ceil(cores-1e-9)))
	least := max(minQuota, time.Duration(runners)*slice) // quota per period
	p := DefaultPeriod
	if per := time.Duration(cores * float64(p)); per < least {
		p = time.Duration(float64(least) / cores).Round(time.Millisecond)
	}
	return min(p, maxPeriod)
}

// bandwidthSlice reads the kernel's CFS bandwidth slice.
func bandwidthSlice() time.Duration {
	b, err := os.ReadFile("/proc/sys/kernel/sched_cfs_bandwidth_slice_us")
	if err != nil {
		return defaultSlice
	}
	us, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || us <= 0 {
		return defaultSlice
	}
	return time.Duration(us) * time.Microsecond
}

// ParseCores reads a quota setting such as CATALOG_CPUS: a number of cores
// ("0.5", "2"), or 0 for none. It rejects what the kernel cannot enforce.
func ParseCores(s string) (float64, error) {
	cores, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	switch {
	case err != nil || math.IsNaN(cores) || math.IsInf(cores, 0):
		return 0, fmt.Errorf("%q is not a number of cores (for example 0.5; 0 for no quota)", s)
	case cores < 0:
		return 0, fmt.Errorf("%q: a CPU quota cannot be negative (0 means no quota)", s)
	case cores > 0 && cores < MinCores:
		return 0, fmt.Errorf("%q: the smallest CPU quota the kernel enforces is %g cores", s, MinCores)
	case cores > float64(runtime.NumCPU()):
		return 0, fmt.Errorf("%q: this machine has %d cores; a quota above that bounds nothing", s, runtime.NumCPU())
	}
	return cores, nil
}

// GOMAXPROCSFor is the number of Ps a process should run with under q:
// ceil(cores), at least 1. Go 1.25+ derives GOMAXPROCS from the cgroup
// limit itself but never sets it below 2, so a 0.5-core clone would run two
// Ps on half a core: twice the threads contending for one quota, and the
// garbage collector's background workers sized for two cores. It returns
// 0 when the runtime's own choice stands (no quota, or a quota of 2 cores
// or more, where Go already uses ceil(cores)).
func GOMAXPROCSFor(q Quota) int {
	if !q.Bounded() || q.Cores >= 2 {
		return 0
	}
	return max(1, int(math.Ceil(q.Cores)))
}

// Hierarchy is a mounted cgroup hierarchy that has the cpu controller.
type Hierarchy struct {
	Version int    // 1 or 2
	Mount   string // its mount point: /sys/fs/cgroup/cpu (v1), /sys/fs/cgroup (v2)
}

// Find returns the hierarchy that controls CPU on this machine: v2 when its
// cpu controller is available there, else a v1 hierarchy with the cpu
// controller. The error says what was looked for, to be shown as it is.
func Find() (Hierarchy, error) {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return Hierarchy{}, fmt.Errorf("reading the mount table: %w", err)
	}
	var v1 *Hierarchy
	var seen []string
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup2":
			controllers, err := os.ReadFile(filepath.Join(m.MountPoint, "cgroup.controllers"))
			if err == nil && hasWord(string(controllers), "cpu") {
				return Hierarchy{Version: 2, Mount: m.MountPoint}, nil
			}
			seen = append(seen, fmt.Sprintf("cgroup v2 at %s has no cpu controller (controllers: %q)",
				m.MountPoint, strings.TrimSpace(string(controllers))))
		case m.FSType == "cgroup" && hasKey(m.SuperOptions, "cpu"):
			v1 = &Hierarchy{Version: 1, Mount: m.MountPoint}
		}
	}
	if v1 != nil {
		return *v1, nil
	}
	seen = append(seen, "no cgroup v1 hierarchy has the cpu controller")
	return Hierarchy{}, errors.New(strings.Join(seen, "; "))
}

func hasWord(s, word string) bool {
	for _, f := range strings.Fields(s) {
		if f == word {
			return true
		}
	}
	return false
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// Group is one cgroup of a hierarchy, Dir its directory.
type Group struct {
	Hierarchy Hierarchy
	Dir       string
}

// Prepare makes the cgroup rel (a path below the hierarchy's mount, such
// as "scaleshop/test-1a2b3c") without a quota of its own, so that groups
// with quotas can be made below it. On v2 it turns the cpu controller on
// for its children on the way down, as v2 requires of every parent.
func (h Hierarchy) Prepare(rel string) (Group, error) {
	dir := h.Mount
	for _, part := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		if h.Version == 2 {
			if err := enableCPU(dir); err != nil {
				return Group{}, err
			}
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return Group{}, fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
	}
	if h.Version == 2 {
		if err := enableCPU(dir); err != nil {
			return Group{}, err
		}
	}
	return Group{Hierarchy: h, Dir: dir}, nil
}

// enableCPU lets dir's children have a cpu.max.
func enableCPU(dir string) error {
	path := filepath.Join(dir, "cgroup.subtree_control")
	current, err := os.ReadFile(path)
	if err == nil && hasWord(string(current), "cpu") {
		return nil
	}
	if err := os.WriteFile(path, []byte("+cpu"), 0); err != nil {
		return fmt.Errorf("enabling the cpu controller in %s: %w", dir, err)
	}
	return nil
}

// Child makes (or reuses) the cgroup name below g with a quota of cores
// and its PeriodFor period.
func (g Group) Child(name string, cores float64) (Group, error) {
	if cores < MinCores {
		return Group{}, fmt.Errorf("cgroup %s: a quota of %g cores is below the kernel's smallest", name, cores)
	}
	child := Group{Hierarchy: g.Hierarchy, Dir: filepath.Join(g.Dir, name)}
	if err := os.Mkdir(child.Dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return Group{}, fmt.Errorf("creating cgroup %s: %w", child.Dir, err)
	}
	period := PeriodFor(cores)
	quota := time.Duration(cores * float64(period))
	us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
	var writes [][2]string
	if g.Hierarchy.Version == 2 {
		writes = [][2]string{{"cpu.max", us(quota) + " " + us(period)}}
	} else {
		// The quota goes off first: the kernel refuses a period that would
		// make the old quota exceed a parent's, and a reused group has one.
		writes = [][2]string{{"cpu.cfs_quota_us", "-1"}, {"cpu.cfs_period_us", us(period)}, {"cpu.cfs_quota_us", us(quota)}}
	}
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(child.Dir, w[0]), []byte(w[1]), 0); err != nil {
			return Group{}, fmt.Errorf("setting %s of %s to %s: %w", w[0], child.Dir, w[1], err)
		}
	}
	return child, nil
}

// Join moves the process pid, all its threads, into g. The kernel counts
// its CPU against g's quota from the next moment it runs.
func (g Group) Join(pid int) error {
	if err := os.WriteFile(filepath.Join(g.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, g.Dir, err)
	}
	return nil
}

// Remove deletes g and every cgroup below it, deepest first. A cgroup
// that still has processes cannot be removed; Remove reports it and goes
// on with the others. A group that is already gone is no error.
func (g Group) Remove() error {
	var dirs []string
	err := filepath.WalkDir(g.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		// A cgroup directory is removed with rmdir alone: its files are the
		// kernel's and go with it.
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// Of returns the quota process pid runs under (0 for this process): the
// smallest quota of its CPU cgroup and that cgroup's ancestors, as the
// kernel enforces the tightest of them.
func Of(pid int) (Quota, error) {
	proc, err := procOf(pid)
	if err != nil {
		return Quota{}, err
	}
	cgroups, err := proc.Cgroups()
	if err != nil {
		return Quota{}, fmt.Errorf("reading the cgroups of pid %d: %w", proc.PID, err)
	}
	mounts, err := proc.MountInfo()
	if err != nil {
		return Quota{}, fmt.Errorf("reading the mounts of pid %d: %w", proc.PID, err)
	}
	// With a v1 cpu hierarchy mounted, it is the one in force: a controller
	// is bound to one hierarchy at a time.
	for _, cg := range cgroups {
		if cg.HierarchyID != 0 && contains(cg.Controllers, "cpu") {
			for _, m := range mounts {
				if m.FSType == "cgroup" && hasKey(m.SuperOptions, "cpu") {
					return walk(m, cg.Path, readV1)
				}
			}
		}
	}
	for _, cg := range cgroups {
		if cg.HierarchyID == 0 {
			for _, m := range mounts {
				if m.FSType == "cgroup2" {
					return walk(m, cg.Path, readV2)
				}
			}
		}
	}
	return Quota{}, nil
}

func procOf(pid int) (procfs.Proc, error) {
	if pid == 0 {
		return procfs.Self()
	}
	return procfs.NewProc(pid)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// walk reads the quota of cgroup path and of each ancestor up to the
// mount's root, and keeps the smallest.
func walk(m *procfs.MountInfo, path string, read func(dir string) (float64, time.Duration, bool)) (Quota, error) {
	q := Quota{Cgroup: path}
	// In a cgroup namespace the mount's root is the namespace's own; the
	// path is relative to the hierarchy's root, so strip what lies above.
	rel := strings.TrimPrefix(path, m.Root)
	for {
		dir := filepath.Join(m.MountPoint, rel)
		if cores, period, ok := read(dir); ok && (!q.Bounded() || cores < q.Cores) {
			q.Cores, q.Period = cores, period
		}
		if rel == "/" || rel == "" || rel == "." {
			return q, nil
		}
		rel = filepath.Dir(rel)
	}
}

func readV1(dir string) (float64, time.Duration, bool) {
	quota, err1 := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	period, err2 := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, 0, false
	}
	return float64(quota) / float64(period), time.Duration(period) * time.Microsecond, true
}

func readV2(dir string) (float64, time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, 0, false
	}
	quota, err1 := strconv.ParseInt(f[0], 10, 64)
	period, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
		return 0, 0, false
	}
	return float64(quota) / float64(period), time.Duration(period) * time.Microsecond, true
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// Exec moves this process into the cgroup dir and then replaces it with
// the program argv[0] (an absolute path), keeping its pid and environment.
// A supervisor starts a clone through a tiny re-exec of itself that calls
// Exec, so the clone's first instruction, and the Go runtime's reading of
// its CPU limit at start, already happen under the quota; writing the pid
// after a plain start would leave a window in which the clone runs
// unbounded and sizes itself for the whole machine. It returns only on
// failure.
func Exec(dir string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("cgroup exec: no program")
	}
	if err := (Group{Dir: dir}).Join(os.Getpid()); err != nil {
		return err
	}
	if err := syscall.Exec(argv[0], argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return nil
}
