//go:build !unix

package pgembed

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"syscall"
)

type osUser struct{ name string }

func platformSupported() error {
	return errors.New("pgembed: not supported on " + runtime.GOOS)
}

func lookupServerUser() (*osUser, error) { return nil, nil }
func (u *osUser) chown(string) error     { return nil }
func (u *osUser) reach(context.Context, *slog.Logger, string, bool) error {
	return nil
}
func sysProcAttr(*osUser) *syscall.SysProcAttr { return nil }
func interrupt(p *os.Process) error            { return p.Signal(os.Interrupt) }
func killGroup(p *os.Process) error            { return p.Kill() }
