//go:build !linux

package faultload

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
