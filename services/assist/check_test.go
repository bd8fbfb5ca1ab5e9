package assist_test

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// TestStartCheck: at start the connector lists the provider's models with its key. A refused
// key stops the start naming ASSIST_API_KEY, a base that is not an OpenAI-compatible API names
// ASSIST_API_BASE; a model the list lacks is a warning with the nearest; a provider that does
// not answer only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, env map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
		t.Helper()
		senv, cfg := sandbox(t)
		return simtest.Start(t, assist.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, nil, senv, cfg, env, faults)
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "llm")
	})
	t.Run("wrong key", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"ASSIST_API_KEY": "sk-not-the-key"}, nil)
		connectortest.RequireRefused(t, err, logs, "ASSIST_API_KEY refused", "401", "Incorrect API key")
	})
	t.Run("wrong base", func(t *testing.T) {
		t.Parallel()
		_, cfg := sandbox(t)
		err, logs := start(t, map[string]string{"ASSIST_API_BASE": cfg["ASSIST_API_BASE"] + "/chat"}, nil)
		connectortest.RequireRefused(t, err, logs, "ASSIST_API_BASE=", "404", "OpenAI-compatible")
	})
	t.Run("model not listed", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, map[string]string{"ASSIST_MODEL": "qwen-pls"}, nil)
		if err != nil || !strings.Contains(logs, "llm: configuration accepted at start") ||
			!strings.Contains(logs, "ASSIST_MODEL is not in the provider's model list") || !strings.Contains(logs, "did you mean qwen-plus") {
			t.Fatalf("start: %v; want it started with a warning naming the nearest model:\n%s", err, logs)
		}
	})
	t.Run("provider down", func(t *testing.T) {
		t.Parallel()
		err, logs := start(t, nil, map[string]sim.Fault{openai.Vendor + " " + openai.OpModels: {ErrorRatio: 1, Code: "http_503"}})
		connectortest.RequireUnchecked(t, err, logs, "llm")
	})
}
