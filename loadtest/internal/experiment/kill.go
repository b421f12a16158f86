package experiment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// killCheck is kill-clone's proof that the failure really happened: the
// clone's process is gone and the gateway took it out of rotation. Without
// it "0 errors" could mean that the kill never ran.
type killCheck struct {
	name string
	mu   sync.Mutex
	pid  int
	gone bool // the pid no longer runs
	out  bool // the gateway ejected the member or marked it unhealthy
	err  string
}

func (k *killCheck) done() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gone && k.out
}

func (k *killCheck) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != "" {
		return k.err
	}
	return fmt.Sprintf("%s pid %d gone: %v; the gateway took it out of rotation: %v", k.name, k.pid, k.gone, k.out)
}

func (k *killCheck) fail(format string, a ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == "" {
		k.err = fmt.Sprintf(format, a...)
	}
}

// confirm kills the clone and waits, within bounds, until its process is
// gone and the gateway no longer routes to it.
func (k *killCheck) confirm(ctx context.Context, s *Stack) {
	names, urls := s.CatalogClones()
	url := ""
	for i, n := range names {
		if n == k.name {
			url = urls[i]
		}
	}
	port, _ := strconv.Atoi(url[strings.LastIndexByte(url, ':')+1:])
	m, err := newCPUMeter([]meterTarget{{name: k.name, ports: []int{port}}})
	if err != nil || m.pidOf(k.name) == 0 {
		k.fail("no process listens on %s's port %d (%v)", k.name, port, err)
		return
	}
	k.mu.Lock()
	k.pid = m.pidOf(k.name)
	k.mu.Unlock()
	if err := s.Control(ctx, "kill", k.name); err != nil {
		k.fail("kill %s: %v", k.name, err)
		return
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		k.fail("%v", err)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		k.mu.Lock()
		if !k.gone {
			p, err := fs.Proc(k.pid)
			st, serr := p.Stat()
			k.gone = err != nil || serr != nil || st.State == "Z" || st.State == "X"
		}
		if !k.out {
			if members, err := s.catalogMembers(ctx); err == nil {
				for _, mb := range members {
					if strings.TrimRight(mb.URL, "/") == strings.TrimRight(url, "/") {
						k.out = mb.Ejected || !mb.Healthy || mb.State != "up"
					}
				}
			}
		}
		finished := k.gone && k.out
		k.mu.Unlock()
		if finished {
			fmt.Fprintf(s.Log, "  confirmed: %s\n", k.String())
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
