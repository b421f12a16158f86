package stacktest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scaleshop/scaleshop/infra/topology"
)

// A drill's exclusive lock must keep other test processes out until the
// drill test has fully cleaned up (its Restart included), then let them in.
func TestExclusiveLockSpansTheDrillAndItsCleanup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(dir, "run", "tests.lock")
	// otherProcess stands for another package's test binary: its own open
	// file description, so flock treats it as a separate holder.
	otherCanShare := func() bool {
		f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil
	}

	var stillExclusiveInCleanup bool
	t.Run("drill", func(t *testing.T) {
		s := &Stack{Manifest: &topology.Manifest{StateDir: dir}}
		s.lockShared(t)
		t.Cleanup(func() { stillExclusiveInCleanup = !otherCanShare() }) // like Restart
		if !otherCanShare() {
			t.Fatal("a shared holder blocked another shared holder")
		}
		s.Exclusive(t)
		s.Exclusive(t) // idempotent
		if otherCanShare() {
			t.Fatal("another process could use the stack during the drill")
		}
	})
	if !stillExclusiveInCleanup {
		t.Error("the exclusive lock was released before the drill's own cleanup ran")
	}
	if !otherCanShare() {
		t.Error("the lock was not released after the drill")
	}
}

func TestDatabaseNameFitsPostgres(t *testing.T) {
	long := strings.Repeat("TestSomething/with a subtest ", 5)
	a, b := databaseName(long), databaseName(long)
	if len(a) > 63 || a == b || !strings.HasPrefix(a, "test_testsomething_with_a_subtest") {
		t.Errorf("databaseName(%q) = %q and %q: want distinct, readable names of at most 63 bytes", long, a, b)
	}
	if unsafeName.MatchString(a) {
		t.Errorf("%q has characters that need quoting", a)
	}
}
