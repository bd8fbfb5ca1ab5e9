//go:build !linux

package cpustat

import "time"

// Self is unknown (-1) off Linux.
func Self() time.Duration { return -1 }

// Machine is unknown (-1) off Linux.
func Machine() time.Duration { return -1 }

// Postgres is unknown (-1) off Linux.
func Postgres() time.Duration { return -1 }
