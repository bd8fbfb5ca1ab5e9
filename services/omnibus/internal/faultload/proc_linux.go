package faultload

import "syscall"

// sysProcAttr makes the all-in-one die with the test (SIGKILL when its parent thread exits), so
// a test killed by its timeout leaves no server holding the ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
