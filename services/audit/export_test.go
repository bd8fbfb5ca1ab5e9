package audit

import "time"

// SetDLQWatchInterval sets how often the dead-letter watcher looks at OMNI_DLQ. Call it from
// TestMain, before any service runs.
func SetDLQWatchInterval(d time.Duration) { dlqWatchInterval = d }
