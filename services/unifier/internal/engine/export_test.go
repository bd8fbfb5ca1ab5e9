package engine

// SetPerEvent makes ApplyBatch run every event through its handler: the reference the
// set-based path is compared with.
func SetPerEvent(en *Engine, on bool) { en.perEvent = on }
