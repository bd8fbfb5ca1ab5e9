// Package cpustat reads CPU time for the load generators' reports: this process's, the
// machine's and the throwaway Postgres's, so figures per event hold up on a shared machine.
package cpustat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// Self is the CPU time (user + system) of this process, or -1 when unknown.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Machine is the CPU time every process of the machine used (/proc/stat: all but idle and
// iowait), or -1 when unknown.
func Machine() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// Postgres is the CPU time of the Postgres server this process started: its postmaster
// (including the backends that exited and were reaped) and its live children. -1 if there is
// none (an external database) or /proc cannot be read.
func Postgres() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	type stat struct {
		ppid                         int
		comm                         string
		utime, stime, cutime, cstime int64
	}
	all := map[int]stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		num := func(k int) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
		all[pid] = stat{ppid: int(num(1)), comm: s[open+1 : end], utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}
	}
	self := os.Getpid()
	var ticks int64
	found := false
	for pid, st := range all {
		if st.ppid != self || st.comm != "postgres" {
			continue
		}
		found = true
		ticks += st.utime + st.stime + st.cutime + st.cstime
		for _, c := range all {
			if c.ppid == pid {
				ticks += c.utime + c.stime
			}
		}
	}
	if !found {
		return -1
	}
	return time.Duration(ticks) * clockTick
}
