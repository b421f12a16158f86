package cpuquota

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

func TestPeriodKeepsTheQuotaEnforceable(t *testing.T) {
	const slice = 5 * time.Millisecond
	for _, tc := range []struct {
		cores float64
		cpus  int
		want  time.Duration
	}{
		{2, 8, 10 * time.Millisecond},     // 20 ms a period: a slice for each of its 2 Ps
		{1, 2, 10 * time.Millisecond},     // 10 ms: two slices for its one P
		{0.5, 2, 10 * time.Millisecond},   // the stack's clones: one slice
		{0.2, 2, 25 * time.Millisecond},   // 2 ms at 10 ms would be under a slice
		{0.1, 2, 50 * time.Millisecond},   // the experiments' q
		{0.05, 2, 100 * time.Millisecond}, // 5 ms a period
		{0.001, 2, time.Second},           // the longest period the kernel takes
	} {
		got := periodFor(tc.cores, slice, tc.cpus)
		if got != tc.want {
			t.Errorf("periodFor(%v cores, %d CPUs) = %v, want %v", tc.cores, tc.cpus, got, tc.want)
		}
		if quota := time.Duration(tc.cores * float64(got)); quota < minQuota {
			t.Errorf("periodFor(%v) = %v gives a quota of %v, below the kernel's %v", tc.cores, got, quota, minQuota)
		}
	}
	if s := bandwidthSlice(); s <= 0 || s > time.Second {
		t.Errorf("the kernel's bandwidth slice read as %v", s)
	}
}

func TestGOMAXPROCSFollowsTheQuota(t *testing.T) {
	for _, tc := range []struct {
		cores float64
		want  int // 0: the runtime's own choice stands
	}{
		{0, 0},
		{0.25, 1},
		{0.5, 1},
		{1, 1},
		{1.5, 2},
		{2, 0},
		{3.5, 0},
	} {
		if got := GOMAXPROCSFor(Quota{Cores: tc.cores}); got != tc.want {
			t.Errorf("GOMAXPROCSFor(%v cores) = %d, want %d", tc.cores, got, tc.want)
		}
	}
}

func TestParseCores(t *testing.T) {
	for _, in := range []string{"0.5", "1", " 0.25 ", "0"} {
		if _, err := ParseCores(in); err != nil {
			t.Errorf("ParseCores(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "half", "-0.5", "NaN", "Inf", "0.0000001", "4096"} {
		if c, err := ParseCores(in); err == nil {
			t.Errorf("ParseCores(%q) = %v, want an error", in, c)
		}
	}
}

// writeTree lays out a fake v1 hierarchy: quotas maps a cgroup path to
// its quota and period files' contents.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestTheTightestQuotaOnThePathHolds(t *testing.T) {
	root := writeTree(t, map[string]string{
		"cpu.cfs_quota_us":                "-1\n",
		"cpu.cfs_period_us":               "100000\n",
		"stack/cpu.cfs_quota_us":          "150000\n", // 1.5 cores for the whole stack
		"stack/cpu.cfs_period_us":         "100000\n",
		"stack/clone/cpu.cfs_quota_us":    "5000\n", // 0.5 of a 10 ms period
		"stack/clone/cpu.cfs_period_us":   "10000\n",
		"stack/big/cpu.cfs_quota_us":      "40000\n", // asks 4 cores, gets the stack's 1.5
		"stack/big/cpu.cfs_period_us":     "10000\n",
		"free/cpu.cfs_quota_us":           "-1\n",
		"free/cpu.cfs_period_us":          "100000\n",
		"nested/inner/cpu.cfs_quota_us":   "2500\n",
		"nested/inner/cpu.cfs_period_us":  "10000\n",
		"nested/cpu.cfs_quota_us":         "-1\n",
		"nested/cpu.cfs_period_us":        "100000\n",
		"cgroupns/view/cpu.cfs_quota_us":  "2000\n",
		"cgroupns/view/cpu.cfs_period_us": "10000\n",
		"cgroupns/cpu.cfs_quota_us":       "-1\n",
		"cgroupns/cpu.cfs_period_us":      "100000\n",
		"unreadable/cpu.cfs_quota_us":     "garbage\n",
		"unreadable/cpu.cfs_period_us":    "10000\n",
	})
	mount := &procfs.MountInfo{Root: "/", MountPoint: root, FSType: "cgroup"}
	for _, tc := range []struct {
		path  string
		mount *procfs.MountInfo
		want  float64
	}{
		{"/", mount, 0},
		{"/free", mount, 0},
		{"/stack/clone", mount, 0.5},
		{"/stack/big", mount, 1.5},
		{"/nested/inner", mount, 0.25},
		{"/unreadable", mount, 0},
		// In a cgroup namespace the mount shows the namespace's root:
		// /proc/PID/cgroup's path is relative to the whole hierarchy.
		{"/ns/view", &procfs.MountInfo{Root: "/ns", MountPoint: filepath.Join(root, "cgroupns"), FSType: "cgroup"}, 0.2},
	} {
		q, err := walk(tc.mount, tc.path, readV1)
		if err != nil {
			t.Fatal(err)
		}
		if q.Cores != tc.want {
			t.Errorf("%s: %v cores, want %v", tc.path, q.Cores, tc.want)
		}
		if q.Bounded() != (tc.want > 0) {
			t.Errorf("%s: Bounded() = %v", tc.path, q.Bounded())
		}
	}
}

func TestReadV2(t *testing.T) {
	root := writeTree(t, map[string]string{
		"a/cpu.max": "max 100000\n",
		"b/cpu.max": "5000 10000\n",
		"c/cpu.max": "garbage\n",
	})
	for dir, want := range map[string]float64{"a": 0, "b": 0.5, "c": 0, "missing": 0} {
		cores, _, _ := readV2(filepath.Join(root, dir))
		if cores != want {
			t.Errorf("%s: %v cores, want %v", dir, cores, want)
		}
	}
}

func TestFormat(t *testing.T) {
	if got := (Quota{}).String(); got != "unbounded" {
		t.Errorf("no quota prints %q", got)
	}
	if got := (Quota{Cores: 0.5}).String(); got != "0.50 cores" {
		t.Errorf("half a core prints %q", got)
	}
}
