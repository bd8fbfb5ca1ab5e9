package pgembed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// leftoverTimeout bounds the wait for a server killed with its parent, and
// its backends, to exit.
const leftoverTimeout = 15 * time.Second

// clearStaleLock removes dataDir/postmaster.pid when the server it names is
// gone. A parent killed with SIGKILL takes its server with it
// (PR_SET_PDEATHSIG) and leaves the file behind; PostgreSQL then refuses to
// start while the PID recorded there belongs to a live process — which the
// dead postmaster still is, as a zombie, where nothing reaps orphans (PID 1
// in many containers), and which an unrelated process may be after PID
// reuse. A server counts as running only if a live process with that PID has
// its working directory in dataDir, as every postmaster and backend does.
// Such a postmaster is a live server, and Start fails with ErrDataDirInUse,
// unless SIGKILL is pending for it: killed with its parent, it may take a
// moment to die. clearStaleLock waits, at most leftoverTimeout, for it and
// every other process working in dataDir (backends exit once they notice
// their postmaster's death, releasing the cluster's shared memory) to be
// gone, then removes the file.
func clearStaleLock(ctx context.Context, logger *slog.Logger, dataDir string) error {
	lock := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(lock)
	if err != nil {
		return nil // no lock file (a clean stop), or one postgres itself will judge
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil
	}
	dir := dataDir
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		dir = real
	}
	// A postmaster killed with its parent may take a moment to die (SIGKILL is pending): wait
	// for it and for its backends (they notice their postmaster's death and release the
	// cluster's shared memory).
	deadline := time.Now().Add(leftoverTimeout)
	for {
		postmaster := running(pid) && cwdOf(pid) == dir
		if postmaster && !dying(pid) {
			return fmt.Errorf("pgembed: %w: %s (postmaster pid %d)", ErrDataDirInUse, dataDir, pid)
		}
		left := processesIn(dir)
		if !postmaster && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if postmaster {
				return fmt.Errorf("pgembed: %w: %s (postmaster pid %d)", ErrDataDirInUse, dataDir, pid)
			}
			return fmt.Errorf("pgembed: processes %v of a server that is gone still run in %s; stop them, then start again", left, dataDir)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgembed: waiting for the server that used %s to exit: %w", dataDir, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pgembed: removing the lock file of a server that is gone: %w", err)
	}
	logger.InfoContext(ctx, "removed the lock file of a PostgreSQL server that is gone (its parent was killed)",
		"data_dir", dataDir, "pid", pid)
	return nil
}

// running reports whether pid is a live process; zombies count as dead.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The command name, in parentheses, may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(string(b[i+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// dying reports whether SIGKILL is pending for pid (per thread or for the
// whole process), as it is for a postmaster whose parent just died.
func dying(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	const sigkill = uint64(1) << (9 - 1)
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "SigPnd" && name != "ShdPnd") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64); err == nil && mask&sigkill != 0 {
			return true
		}
	}
	return false
}

// cwdOf returns the working directory of pid, or "" when it cannot be read.
func cwdOf(pid int) string {
	d, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return ""
	}
	return d
}

// processesIn returns the live processes, other than this one, whose working
// directory is dir.
func processesIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if cwdOf(pid) == dir && running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
