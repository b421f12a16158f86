package main

import "github.com/prometheus/procfs"

// rssByGroup sums the resident memory (bytes) of every process per process
// group. Each component runs in its own group, so this counts a
// postmaster's backends and a JVM's threads with their component.
func rssByGroup() map[int]int64 {
	out := map[int]int64{}
	procs, err := procfs.AllProcs()
	if err != nil {
		return out
	}
	for _, p := range procs {
		stat, err := p.Stat()
		if err != nil {
			continue // the process ended meanwhile
		}
		out[stat.PGRP] += int64(stat.ResidentMemory())
	}
	return out
}
