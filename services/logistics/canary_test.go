package logistics_test

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/logistics"
	sbsf "github.com/omnibus-dev/omnibus/services/sandbox/sfexpress"
)

// TestCanaryPilotForTwoAgents: LOGISTICS_CANARY=cainiao:100%;agent=a-17,a-23 sends the SF
// waybills the two pilot agents look up through Cainiao's trace query; everyone else's still go
// to SF Express, and numbers that go to Cainiao anyway are not part of the rollout.
func TestCanaryPilotForTwoAgents(t *testing.T) {
	t.Parallel()
	tb := setup(t, map[string]string{"LOGISTICS_CANARY": "cainiao:100%;agent=a-17,a-23", "LOGISTICS_CACHE_TTL": "1ns"})
	for _, tc := range []struct{ agent, no, want string }{
		{"a-17", sbsf.WaybillDelivered, logistics.ProviderCainiao},
		{"a-23", sbsf.WaybillDelivered, logistics.ProviderCainiao},
		{"a-99", sbsf.WaybillDelivered, logistics.ProviderSF},
		{"", sbsf.WaybillDelivered, logistics.ProviderSF},
		{"a-17", "YT7512345678901", logistics.ProviderCainiao},
	} {
		req := map[string]any{"customer_id": custID, "tracking_number": tc.no}
		if tc.agent != "" {
			req["agent_id"] = tc.agent
		}
		id := tb.request(t, req)
		got := tb.results(t, id, 1)
		if got[0].Type() != logistics.TypeCompleted {
			t.Fatalf("agent %q, %s: %s %s", tc.agent, tc.no, got[0].Type(), got[0].Data())
		}
		if tr := decode(t, got[0]); tr.Provider != tc.want {
			t.Errorf("agent %q, %s: answered by %s, want %s", tc.agent, tc.no, tr.Provider, tc.want)
		}
	}
	if n := len(tb.bus.Events(t, bus.StreamOps, canary.SubjectStarted)); n != 1 {
		t.Fatalf("%d started events, want 1", n)
	}
}

// TestCanaryConfig: a pilot of an unknown carrier is refused with a suggestion.
func TestCanaryConfig(t *testing.T) {
	t.Parallel()
	_, _, cfg := sandbox(t)
	cfg["LOGISTICS_CANARY"] = "cainaio:10%"
	var c logistics.Config
	if err := config.Load(&c, func(k string) (string, bool) { v, ok := cfg[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), `"cainaio" is not a variant (sf_express, cainiao) (did you mean cainiao?)`) {
		t.Fatalf("LOGISTICS_CANARY=cainaio:10%%: %v", err)
	}
}
