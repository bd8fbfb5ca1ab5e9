//go:build unix

package pgembed_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// helperEnv makes the test binary act as a parent process that starts a
// server and then waits to be killed; see TestParentDeathKillsServer.
const helperEnv = "PGEMBED_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperMain()
		return
	}
	goleak.VerifyTestMain(m)
}

// helperMain starts a server, prints its data directory and sleeps until it
// is killed.
func helperMain() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgembed.Start(ctx, pgembed.Options{Settings: map[string]string{"fsync": "off"}})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", s.DataDir())
	time.Sleep(time.Hour)
	os.Exit(2)
}
