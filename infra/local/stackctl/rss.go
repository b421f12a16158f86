package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// rssByGroup sums the resident memory (bytes) of every process per process
// group. Each component runs in its own group, so this counts a
// postmaster's backends and a JVM's threads with their component.
func rssByGroup() map[int]int64 {
	out := map[int]int64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	page := int64(os.Getpagesize())
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		// Fields after the parenthesised command name, which may hold spaces.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 22 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])               // field 5 of /proc/PID/stat
		pages, _ := strconv.ParseInt(f[21], 10, 64) // field 24: rss
		out[pgrp] += pages * page
	}
	return out
}
