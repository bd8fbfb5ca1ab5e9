//go:build unix && !linux

package pgembed

import "syscall"

// sysProcAttr returns the attributes for initdb and postgres: their own
// process group, so that terminal signals reach only the parent, which stops
// the server in order, and the credential of u. Only Linux can also kill the
// server when the parent dies.
func sysProcAttr(u *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: u.credential(),
	}
}
