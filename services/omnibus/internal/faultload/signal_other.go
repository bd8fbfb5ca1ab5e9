//go:build !linux

package faultload

import (
	"errors"
	"runtime"
)

type serverSignal int

const (
	sigStop serverSignal = iota
	sigCont
)

func signalServer(int, serverSignal) error {
	return errors.New("faultload: pausing postgres is not supported on " + runtime.GOOS)
}
