package experiment

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// ComponentCPU is what one part of the stack spent during a measurement,
// in cores (CPU seconds per second of wall time).
type ComponentCPU struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

// meterTarget is a part of the stack whose CPU is metered: the processes
// listening on its ports, and their children (Postgres's backends).
type meterTarget struct {
	name  string
	ports []int
	pid   int // a process known by its pid (the generator itself)
}

// cpuMeter reads the CPU time of the stack's processes and of the machine
// from /proc, so a capacity can be shown beside what every component spent
// to reach it.
type cpuMeter struct {
	fs      procfs.FS
	targets []meterTarget
	pids    map[string][]int
}

// meterReading is one reading of every target and of the machine.
type meterReading struct {
	at      time.Time
	cpu     map[string]float64 // seconds
	busy    float64            // the machine's non-idle seconds, all cores
	loadAvg float64
}

func newCPUMeter(targets []meterTarget) (*cpuMeter, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, err
	}
	m := &cpuMeter{fs: fs, targets: targets}
	return m, m.resolve()
}

// resolve finds the processes behind each target's ports; call it again
// after clones were restarted.
func (m *cpuMeter) resolve() error {
	//lint:ignore SA1019 netlink sockets would bring a dependency; /proc/net/tcp is all this needs.
	tcp, err := m.fs.NetTCP()
	if err != nil {
		return fmt.Errorf("reading /proc/net/tcp: %w", err)
	}
	const listen = 10
	inodeOfPort := map[int]uint64{}
	for _, l := range tcp {
		if l.St == listen {
			inodeOfPort[int(l.LocalPort)] = l.Inode
		}
	}
	procs, err := m.fs.AllProcs()
	if err != nil {
		return err
	}
	pidOfInode := map[uint64]int{}
	children := map[int][]int{}
	for _, p := range procs {
		if st, err := p.Stat(); err == nil {
			children[st.PPID] = append(children[st.PPID], p.PID)
		}
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue // another user's process, or gone
		}
		for _, t := range targets {
			if s, ok := strings.CutPrefix(t, "socket:["); ok {
				if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
					pidOfInode[n] = p.PID
				}
			}
		}
	}
	m.pids = map[string][]int{}
	for _, t := range m.targets {
		var pids []int
		if t.pid != 0 {
			pids = append(pids, t.pid)
		}
		for _, port := range t.ports {
			if pid, ok := pidOfInode[inodeOfPort[port]]; ok && inodeOfPort[port] != 0 && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
				pids = append(pids, children[pid]...)
			}
		}
		m.pids[t.name] = pids
	}
	return nil
}

// pidOf is the first process of a target, 0 when none listens.
func (m *cpuMeter) pidOf(name string) int {
	if p := m.pids[name]; len(p) > 0 {
		return p[0]
	}
	return 0
}

func (m *cpuMeter) read() meterReading {
	r := meterReading{at: time.Now(), cpu: map[string]float64{}}
	for _, t := range m.targets {
		for _, pid := range m.pids[t.name] {
			if p, err := m.fs.Proc(pid); err == nil {
				if st, err := p.Stat(); err == nil {
					r.cpu[t.name] += st.CPUTime()
				}
			}
		}
	}
	if st, err := m.fs.Stat(); err == nil {
		c := st.CPUTotal
		r.busy = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	}
	if la, err := m.fs.LoadAvg(); err == nil {
		r.loadAvg = la.Load1
	}
	return r
}

// between is every target's cores from a to b, in the targets' order, and
// the machine's busy cores.
func (m *cpuMeter) between(a, b meterReading) (parts []ComponentCPU, machine float64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return nil, 0
	}
	for _, t := range m.targets {
		parts = append(parts, ComponentCPU{Name: t.name, Cores: (b.cpu[t.name] - a.cpu[t.name]) / wall})
	}
	return parts, (b.busy - a.busy) / wall
}

// loadAverage is the machine's 1-minute load average now.
func loadAverage() float64 {
	la, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	l, err := la.LoadAvg()
	if err != nil {
		return 0
	}
	return l.Load1
}
