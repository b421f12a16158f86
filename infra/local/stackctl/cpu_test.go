package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test binary stands in for stackctl in the re-exec that puts a clone
// in its cgroup: /proc/self/exe is this binary in the child.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == cgroupExecCommand {
		fmt.Fprintln(os.Stderr, "stackctl:", cgroupExec(os.Args[2:]))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestAClonesFirstInstructionRunsUnderItsQuota(t *testing.T) {
	var out bytes.Buffer
	state := t.TempDir()
	e, err := newEnvironment("test", func(k string) string {
		return map[string]string{"SCALESHOP_STATE_DIR": state}[k]
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{e.path("logs"), e.path("run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.cpu = e.prepareCPU()
	if !e.cpu.enforced() {
		if os.Geteuid() != 0 {
			t.Skipf("making cgroups needs root (make test runs as root): %s", e.cpu.reason)
		}
		t.Fatalf("root, yet no CPU quota can be set here: %s", e.cpu.reason)
	}
	t.Cleanup(e.removeCgroups)

	dir, err := e.cloneCgroup("probe-clone", 0.25)
	if err != nil {
		t.Fatal(err)
	}
	// cat is exec'd by the re-exec once it has joined the cgroup, so what
	// it prints is where its very first instruction ran.
	p, err := e.start("probe-clone", procSpec{path: "/bin/cat", args: []string{"/proc/self/cgroup"}, cgroup: dir}, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("cat did not exit")
	}
	if p.err != nil {
		t.Fatalf("the re-exec failed: %v\n%s", p.err, tail(e.logPath("probe-clone"), 5))
	}
	log, err := os.ReadFile(e.logPath("probe-clone"))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(e.cgroupName(), "probe-clone")
	var cpuLine string
	for _, line := range strings.Split(string(log), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (strings.Contains(","+f[1]+",", ",cpu,") || (f[0] == "0" && cpuLine == "")) {
			cpuLine = line
		}
	}
	if !strings.HasSuffix(cpuLine, "/"+want) {
		t.Errorf("the clone's own view of its cgroup is %q, want one ending in /%s\n%s", cpuLine, want, log)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the clone's cgroup %s is still there after it exited (%v)", dir, err)
	}
}
