package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestDemoCallTransfer is the demo's phone path with a transfer, without a browser: a simulated
// customer phones the hotline (the sandbox's SIP caller), the desk's call shows it being
// transcribed live, a supervisor transfers it to extension 8003, the caller takes the REFER as a
// PBX does, and the desk's call says it was transferred to 8003 — what the workbench shows as
// "↪ Transferred to 8003".
func TestDemoCallTransfer(t *testing.T) {
	t.Parallel()
	base := startSimulatedWith(t, map[string]string{
		"VOICE_SIP_LISTEN":           "127.0.0.1:" + freeUDPPort(t),
		"SANDBOX_CALL_INTERVAL":      "0", // no scheduled calls: only this test's
		"SANDBOX_TCCC_CALL_INTERVAL": "0",
	})
	waitMounted(t, base, "/sandbox/_admin/customers", "/desk/login", "/api/openapi.json")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := apiCall(t, base, "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", "", nil, &tok); code != 200 {
		t.Fatalf("supervisor token: %d", code)
	}
	// Sentences, then a long silence: the call stays up until it is transferred.
	bustest.WaitFor(t, 30*time.Second, "the sandbox placing the call", func() bool {
		return sandboxCall(t, base, "POST", "/sandbox/_admin/customers/"+strconv.Itoa(bankCaseCustomer)+"/call",
			map[string]any{"say": []string{"zh-card-bill", "en-order-number"}, "pause_ms": 1000, "tail_ms": 60000}, nil) == 202
	})

	type call struct {
		CallID     string `json:"call_id"`
		State      string `json:"state"`
		Reason     string `json:"reason"`
		Transcript string `json:"transcript"`
		Transfer   *struct {
			Outcome, Target string
		} `json:"transfer"`
	}
	// find returns the test's call as the desk's timeline has it.
	find := func() (string, *call) {
		var list struct {
			Conversations []struct {
				ID string `json:"id"`
			} `json:"conversations"`
		}
		if apiCall(t, base, "GET", "/api/conversations", tok.AccessToken, nil, &list) != 200 {
			return "", nil
		}
		for _, c := range list.Conversations {
			var tl struct {
				Items []struct {
					Kind string `json:"kind"`
					Call *call  `json:"call"`
				} `json:"items"`
			}
			if apiCall(t, base, "GET", "/api/conversations/"+c.ID+"/timeline", tok.AccessToken, nil, &tl) != 200 {
				continue
			}
			for _, it := range tl.Items {
				if it.Kind == "call" && it.Call != nil {
					return c.ID, it.Call
				}
			}
		}
		return "", nil
	}
	var live *call
	bustest.WaitFor(t, 60*time.Second, "the call answered and transcribed on the desk", func() bool {
		_, live = find()
		return live != nil && live.State == "answered" && live.Transcript == "live"
	})
	var accepted map[string]any
	if code := apiCall(t, base, "POST", "/api/calls/"+live.CallID+"/transfer", tok.AccessToken, map[string]string{"target": "8003"}, &accepted); code/100 != 2 {
		t.Fatalf("transfer: %d", code)
	}
	var done *call
	bustest.WaitFor(t, 60*time.Second, "the transfer's outcome on the desk's call", func() bool {
		_, done = find()
		return done != nil && done.Transfer != nil && done.State == "ended"
	})
	if done.Transfer.Outcome != "transferred" || done.Transfer.Target != "8003" || done.Reason != "transferred" {
		t.Fatalf("the desk's call after the transfer: %+v (transfer %+v); want transferred to 8003, ended for it", done, done.Transfer)
	}
	t.Logf("the desk's call: %s, reason %s, transcript %s, transfer %+v", done.State, done.Reason, done.Transcript, *done.Transfer)
	if done.Transcript == "live" || done.Transcript == "" {
		t.Errorf("the ended call's transcript state is %q, want its final state", done.Transcript)
	}
}
