package kuaishou_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (a consumer that was not
// drained, a push still in flight).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
