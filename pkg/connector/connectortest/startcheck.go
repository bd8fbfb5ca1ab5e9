package connectortest

import (
	"errors"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/connector"
)

// The assertions of a start check's tests (connector.CheckVendor), on what servicetest.Start
// returns: the start's error and the connector's log.

// RequireRefused fails t unless err wraps connector.ErrMisconfigured and says every one of want
// (the variables to fix, the vendor's code).
func RequireRefused(t testing.TB, err error, logs string, want ...string) {
	t.Helper()
	if !errors.Is(err, connector.ErrMisconfigured) {
		t.Fatalf("start: %v; want connector.ErrMisconfigured. Logs:\n%s", err, logs)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("start error %q does not say %q", err, w)
		}
	}
}

// RequireAccepted fails t unless the connector started without a warning and logged that each of
// vendors accepted its configuration.
func RequireAccepted(t testing.TB, err error, logs string, vendors ...string) {
	t.Helper()
	if err != nil || strings.Contains(logs, "level=WARN") {
		t.Fatalf("start: %v; want a start without warnings, logs:\n%s", err, logs)
	}
	for _, v := range vendors {
		if !strings.Contains(logs, v+": configuration accepted at start") {
			t.Fatalf("no %q in the log:\n%s", v+": configuration accepted at start", logs)
		}
	}
}

// RequireUnchecked fails t unless the connector started with the warning that vendor could not be
// reached (an outage is not a configuration error), the warning saying every one of want.
func RequireUnchecked(t testing.TB, err error, logs, vendor string, want ...string) {
	t.Helper()
	if err != nil || !strings.Contains(logs, vendor+" unreachable at start: configuration not checked") {
		t.Fatalf("start with %s unreachable: %v; want a start with a warning, logs:\n%s", vendor, err, logs)
	}
	for _, w := range want {
		if !strings.Contains(logs, w) {
			t.Errorf("the warning does not say %q:\n%s", w, logs)
		}
	}
}
