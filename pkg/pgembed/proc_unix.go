//go:build unix

package pgembed

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// serverUser is the OS user the server runs as when pgembed runs as root.
const serverUser = "postgres"

// osUser is an OS account to run the PostgreSQL programs as.
type osUser struct {
	name     string
	uid, gid uint32
}

// platformSupported reports whether pgembed can manage a server here.
func platformSupported() error { return nil }

// lookupServerUser returns the account to run initdb and postgres as: nil
// (the current user) normally, and the postgres OS user when running as root,
// because PostgreSQL refuses to run as root.
func lookupServerUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("pgembed: running as root, and PostgreSQL refuses to run as root, but there is no %q OS user to run it as (the postgresql package creates it): %w", serverUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgembed: parsing uid of OS user %q: %w", serverUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgembed: parsing gid of OS user %q: %w", serverUser, err)
	}
	return &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown hands path to u. It does nothing when u is nil.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Chown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("pgembed: handing %s to OS user %q: %w", path, u.name, err)
	}
	return nil
}

// credential returns the credential to start processes with, or nil to keep
// the current one.
func (u *osUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	// Groups is empty on purpose: the child drops root's supplementary groups.
	return &syscall.Credential{Uid: u.uid, Gid: u.gid}
}

// interrupt asks the postmaster for a fast shutdown.
func interrupt(p *os.Process) error { return p.Signal(syscall.SIGINT) }

// killGroup kills the process group led by p: the postmaster and any
// backends it forked.
func killGroup(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		// The group may be gone already; make sure the leader is.
		return p.Kill()
	}
	return nil
}
