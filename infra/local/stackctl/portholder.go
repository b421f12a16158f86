package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// holder is the process listening on a port, read from /proc.
type holder struct {
	pid     int
	cmdline string
	// The scaleshop supervisor the holder runs under, when it is one of a
	// stack's processes: its pid, profile and checkout (its working
	// directory, where make ran).
	supervisor        int
	profile, checkout string
}

// listenerTCPState is the kernel's TCP_LISTEN in /proc/net/tcp.
const listenerTCPState = 0x0A

// portHolder finds the process that listens on port on this machine; ok
// is false when none can be seen (the port is free, or the socket belongs
// to a process this user may not inspect).
func portHolder(port int) (h holder, ok bool) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return h, false
	}
	var inodes []string
	// procfs deprecates its /proc/net/tcp readers for netlink, which is
	// faster with very many sockets; this runs once, after a start has
	// already failed, so it is not worth a netlink dependency.
	//lint:ignore SA1019 read once on a failed start, see above
	for _, table := range []func() (procfs.NetTCP, error){fs.NetTCP, fs.NetTCP6} {
		lines, err := table()
		if err != nil {
			continue
		}
		for _, l := range lines {
			if l.LocalPort == uint64(port) && l.St == listenerTCPState {
				inodes = append(inodes, "socket:["+strconv.FormatUint(l.Inode, 10)+"]")
			}
		}
	}
	if len(inodes) == 0 {
		return h, false
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return h, false
	}
	for _, p := range procs {
		targets, err := p.FileDescriptorTargets()
		if err != nil || !slices.ContainsFunc(targets, func(t string) bool { return slices.Contains(inodes, t) }) {
			continue
		}
		h = holder{pid: p.PID, cmdline: commandLine(p)}
		h.supervisor, h.profile, h.checkout = supervisorOf(fs, p)
		return h, true
	}
	return h, false
}

func commandLine(p procfs.Proc) string {
	args, err := p.CmdLine()
	if err != nil || len(args) == 0 {
		comm, _ := p.Comm()
		return comm
	}
	line := strings.Join(args, " ")
	if len(line) > 160 {
		line = line[:157] + "..."
	}
	return line
}

// supervisorOf walks up from p to the stackctl that started it, if any.
func supervisorOf(fs procfs.FS, p procfs.Proc) (pid int, profile, checkout string) {
	for range 10 {
		args, _ := p.CmdLine()
		if len(args) > 1 && filepath.Base(args[0]) == "stackctl" && slices.Contains(args[1:], "up") {
			profile = "dev"
			if i := slices.Index(args, "--profile"); i >= 0 && i+1 < len(args) {
				profile = args[i+1]
			}
			checkout, _ = p.Cwd()
			return p.PID, profile, checkout
		}
		stat, err := p.Stat()
		if err != nil || stat.PPID <= 1 {
			return 0, "", ""
		}
		if p, err = fs.Proc(stat.PPID); err != nil {
			return 0, "", ""
		}
	}
	return 0, "", ""
}

// owner says in one line whose stack a held port belongs to, or "" for a
// process that is no scaleshop stack's: what a reader must stop.
func (h holder) owner(ownSupervisor int) string {
	switch {
	case h.supervisor == 0:
		return ""
	case h.supervisor == ownSupervisor:
		return fmt.Sprintf("this checkout's %s stack is running (supervisor pid %d): `make down` stops it", h.profile, h.supervisor)
	default:
		return fmt.Sprintf("a scaleshop %s stack from another directory, %s, holds them (supervisor pid %d): run `make down` there",
			h.profile, h.checkout, h.supervisor)
	}
}
