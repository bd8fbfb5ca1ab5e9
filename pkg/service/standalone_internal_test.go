package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// TestStandaloneRefusesUnconfigured: run on its own (a container), an optional service that
// nothing configures refuses to start, naming the variables that would enable it, before it
// dials anything.
func TestStandaloneRefusesUnconfigured(t *testing.T) {
	t.Parallel()
	ran := false
	s := Service{Name: "acme", NoBus: true, Run: func(context.Context, Deps) error { ran = true; return nil },
		Configured: func(env config.Lookup) (bool, []string) {
			_, ok := env("OMNIBUS_TEST_ACME_KEY_NEVER_SET")
			return ok, []string{"OMNIBUS_TEST_ACME_KEY_NEVER_SET"}
		}}
	err := runStandalone(context.Background(), s, Base{HTTPAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err == nil || ran || !strings.Contains(err.Error(), "acme is not configured: set OMNIBUS_TEST_ACME_KEY_NEVER_SET") {
		t.Fatalf("runStandalone: %v (ran %v); want a refusal naming OMNIBUS_TEST_ACME_KEY_NEVER_SET", err, ran)
	}
}
