package faultload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

type serverSignal = syscall.Signal

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// signalServer sends sig to the postmaster pid and to every child of it. The postmaster's
// process group is not enough: each backend and auxiliary process calls setsid() when it
// starts, so it leads a group of its own. For SIGSTOP the postmaster goes first, so that it
// forks nothing while its children are being stopped.
func signalServer(pid int, sig syscall.Signal) error {
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); !bytes.HasPrefix(comm, []byte("postgres")) {
		return fmt.Errorf("faultload: process %d is %q, not a postmaster", pid, bytes.TrimSpace(comm))
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("faultload: %s to the postmaster %d: %w", sig, pid, err)
	}
	for _, child := range childrenOf(pid) {
		if err := syscall.Kill(child, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("faultload: %s to postgres process %d: %w", sig, child, err)
		}
	}
	return nil
}

// childrenOf returns the processes whose parent is pid, from /proc/<pid>/stat.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
