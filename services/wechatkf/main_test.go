package wechatkf_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (a pull loop, a token refresh,
// a consumer that was not drained).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
