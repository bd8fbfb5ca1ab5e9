//go:build !linux

package loadgen

import "time"

func selfCPU() time.Duration     { return -1 }
func postgresCPU() time.Duration { return -1 }
