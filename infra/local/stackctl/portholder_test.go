package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPortHolderNamesThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h, ok := portHolder(ln.Addr().(*net.TCPAddr).Port)
	if !ok || h.pid != os.Getpid() || !strings.Contains(h.cmdline, filepath.Base(os.Args[0])) {
		t.Fatalf("portHolder = %+v, %v; want pid %d running %s", h, ok, os.Getpid(), os.Args[0])
	}
	if h.supervisor != 0 || h.owner(0) != "" {
		t.Errorf("a test process is no stack's: %+v says %q", h, h.owner(0))
	}
}

func TestPortHolderOfNoOne(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if h, ok := portHolder(port); ok {
		t.Fatalf("a free port has a holder: %+v", h)
	}
}

// A supervisor of another checkout: this test binary, started again as
// "<elsewhere>/.state/bin/stackctl ... up --profile dev", holding a port.
func TestPortHolderNamesAnotherCheckoutsStack(t *testing.T) {
	if os.Getenv("STACKCTL_TEST_HOLD_PORT") == "1" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\n")
		time.Sleep(time.Minute) // killed by the test; bounded if the test dies
		os.Exit(0)
	}
	elsewhere := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPortHolderNamesAnotherCheckoutsStack$", "up", "--profile", "dev")
	cmd.Args[0] = filepath.Join(elsewhere, ".state", "bin", "stackctl")
	cmd.Dir = elsewhere
	cmd.Env = append(os.Environ(), "STACKCTL_TEST_HOLD_PORT=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the holder did not say its port: %v", err)
	}
	port, _ := strconv.Atoi(strings.TrimSpace(line))
	h, ok := portHolder(port)
	if !ok || h.pid != cmd.Process.Pid {
		t.Fatalf("portHolder(%d) = %+v, %v; want pid %d", port, h, ok, cmd.Process.Pid)
	}
	got := h.owner(os.Getpid())
	for _, want := range []string{"another directory", elsewhere, "dev", strconv.Itoa(cmd.Process.Pid), "make down"} {
		if !strings.Contains(got, want) {
			t.Errorf("owner line %q lacks %q", got, want)
		}
	}
	if own := h.owner(cmd.Process.Pid); !strings.Contains(own, "this checkout's dev stack") {
		t.Errorf("as our own supervisor it says %q", own)
	}
}

// make down where no stack ever ran says so, instead of "the stack is
// down", and names who holds its ports.
func TestDownWithNothingRunningSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Put the gateway of a dev stack that never ran on the port this test holds.
	port := ln.Addr().(*net.TCPAddr).Port
	env := map[string]string{
		"SCALESHOP_STATE_DIR": t.TempDir(),
		"SCALESHOP_CACHE_DIR": t.TempDir(),
		"GATEWAY_PORT":        strconv.Itoa(port),
	}
	var out strings.Builder
	e, err := newEnvironment("dev", func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.down(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "nothing was running here") || strings.Contains(got, "stack is down") {
		t.Errorf("down said:\n%s", got)
	}
	if !strings.Contains(got, "port "+strconv.Itoa(port)) || !strings.Contains(got, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("down does not name the holder of port %d:\n%s", port, got)
	}
}
