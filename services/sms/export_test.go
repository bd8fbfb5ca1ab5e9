package sms

import (
	"os"
	"testing"
	"time"
)

// TestMain gives a push's de-duplication marks a generous budget: the tests check the marks,
// not their timing (BenchmarkPush5000's business), and a loaded machine may take longer than
// the production second to write 5,000 of them.
func TestMain(m *testing.M) {
	markTimeout = 30 * time.Second
	os.Exit(m.Run())
}
