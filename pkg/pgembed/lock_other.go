//go:build !linux

package pgembed

import (
	"context"
	"log/slog"
)

// clearStaleLock leaves postmaster.pid to PostgreSQL, which removes it when
// the PID it records is not alive.
func clearStaleLock(context.Context, *slog.Logger, string) error { return nil }
