package pgembed

import "syscall"

// sysProcAttr returns the attributes for initdb and postgres: their own
// process group, so that terminal signals reach only the parent, which stops
// the server in order; SIGKILL when the parent dies, so that no server
// outlives it; and the credential of u.
func sysProcAttr(u *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: u.credential(),
	}
}
