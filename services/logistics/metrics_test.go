package logistics_test

import (
	"os"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/resilience/resiliencetest"
)

// promRegistry is what the process's /metrics would serve.
var promRegistry = resiliencetest.InstallGlobal()

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func vendorCalls(t testing.TB, vendor, op string) map[string]float64 {
	return resiliencetest.VendorCalls(t, promRegistry, vendor, op)
}
