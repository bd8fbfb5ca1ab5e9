package voice_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// transferOutcome is the data of omni.channel.call.transferred and .transfer.failed.
type transferOutcome struct {
	CallID  string `json:"call_id"`
	Target  string `json:"target"`
	ReferTo string `json:"refer_to"`
	AgentID string `json:"agent_id"`
	Status  int    `json:"status"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
}

// answeredCallID is the call id of the (one) answered call.
func answeredCallID(t *testing.T, tb *testBundle) string {
	t.Helper()
	var id string
	bustest.WaitFor(t, 10*time.Second, "the answered event", func() bool {
		for _, e := range tb.events(t)[voice.TypeCallAnswered] {
			var d struct {
				CallID string `json:"call_id"`
			}
			_ = event.DecodeData(e, &d)
			id = d.CallID
		}
		return id != ""
	})
	return id
}

// command publishes a call command as the desk does.
func command(t *testing.T, tb *testBundle, typ, subject string, data map[string]any) {
	t.Helper()
	cmd, err := event.New(typ, "/services/desk", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.bus.Client.Publish(ctxFor(t, 5*time.Second), subject, cmd); err != nil {
		t.Fatal(err)
	}
}

// waitTransfer waits for the transfer outcome of the call and returns its type and data.
func waitTransfer(t *testing.T, tb *testBundle) (string, transferOutcome) {
	t.Helper()
	var got []event.Event
	bustest.WaitFor(t, 15*time.Second, "the transfer's outcome", func() bool {
		got = tb.bus.Events(t, bus.StreamIn, voice.SubjectTransferOutcome+".>")
		return len(got) > 0
	})
	if len(got) != 1 {
		t.Fatalf("%d transfer outcomes, want 1", len(got))
	}
	var d transferOutcome
	if err := event.DecodeData(got[0], &d); err != nil {
		t.Fatal(err)
	}
	return got[0].Type(), d
}

func waitRefer(t *testing.T, tr *trunk) *sip.Request {
	t.Helper()
	select {
	case r := <-tr.refers:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no REFER reached the trunk")
		return nil
	}
}

// TestTransfer: a transfer command becomes a REFER in the call's dialog (RFC 3515) whose
// Refer-To names the extension at VOICE_TRANSFER_DOMAIN (or the trunk's address); the NOTIFYs'
// sipfrag decides the outcome: 200 → transferred and omnibus leaves the call (BYE, ended reason
// transferred); 486 → transfer failed and the call stays up (a later hang-up command ends it);
// a refused REFER → failed with its status; no final NOTIFY within VOICE_TRANSFER_TIMEOUT →
// failed (timeout), the call still up.
func TestTransfer(t *testing.T) {
	t.Parallel()

	t.Run("Transferred", func(t *testing.T) {
		t.Parallel()
		tb := start(t, nil, map[string]string{"VOICE_TRANSFER_DOMAIN": "pbx.example.com:5070"})
		tr, c := dial(t, tb)
		tr.scriptRefer(0, "SIP/2.0 100 Trying", "SIP/2.0 200 OK")
		c.sendAudio(t, 200*time.Millisecond)
		id := answeredCallID(t, tb)
		command(t, tb, voice.TypeTransfer, voice.SubjectTransfer, map[string]any{"channel": "voice", "call_id": id, "target": "8012", "agent_id": "agent-li"})
		refer := waitRefer(t, tr)
		if h := refer.GetHeader("Refer-To"); h == nil || h.Value() != "<sip:8012@pbx.example.com:5070>" {
			t.Fatalf("Refer-To %v", h)
		}
		if refer.GetHeader("Referred-By") == nil || refer.CallID().Value() != tr.sess.InviteRequest.CallID().Value() {
			t.Fatalf("REFER not in the call's dialog or without Referred-By:\n%s", refer)
		}
		typ, d := waitTransfer(t, tb)
		if typ != voice.TypeTransferred || d.CallID != id || d.Target != "8012" || d.ReferTo != "sip:8012@pbx.example.com:5070" || d.AgentID != "agent-li" {
			t.Fatalf("outcome %s %+v", typ, d)
		}
		tr.waitBye(t, 10*time.Second, "omnibus did not leave the transferred call")
		e := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
		if e.HangupSide != "omnibus" || e.Reason != "transferred" || e.Recording == nil {
			t.Fatalf("ended = %+v", e)
		}
	})

	t.Run("BusyStaysUp", func(t *testing.T) {
		t.Parallel()
		tb := start(t, nil, nil)
		tr, c := dial(t, tb)
		tr.scriptRefer(0, "SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here")
		c.sendAudio(t, 200*time.Millisecond)
		id := answeredCallID(t, tb)
		command(t, tb, voice.TypeTransfer, voice.SubjectTransfer, map[string]any{"channel": "voice", "call_id": id, "target": "8013"})
		// No VOICE_TRANSFER_DOMAIN: the extension at the address the INVITE came from.
		if h := waitRefer(t, tr).GetHeader("Refer-To"); h == nil || h.Value() != "<sip:8013@127.0.0.1:"+strconv.Itoa(tr.port)+">" {
			t.Fatalf("Refer-To %v, want the trunk's address", h)
		}
		typ, d := waitTransfer(t, tb)
		if typ != voice.TypeTransferFailed || d.Reason != "failed" || d.Status != 486 || d.Detail != "SIP/2.0 486 Busy Here" {
			t.Fatalf("outcome %s %+v", typ, d)
		}
		if n := len(tb.events(t)[voice.TypeCallEnded]); n != 0 {
			t.Fatalf("the call ended after a failed transfer")
		}
		// Still up: the hang-up command is what ends it.
		command(t, tb, voice.TypeHangup, voice.SubjectHangup, map[string]any{"channel": "voice", "call_id": id})
		tr.waitBye(t, 10*time.Second, "no BYE after the hang-up command")
		if e := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0]); e.Reason != "hangup_requested" {
			t.Fatalf("ended = %+v", e)
		}
	})

	t.Run("NoFinalNotify", func(t *testing.T) {
		t.Parallel()
		tb := start(t, nil, map[string]string{"VOICE_TRANSFER_TIMEOUT": "1s"})
		tr, c := dial(t, tb)
		tr.scriptRefer(0, "SIP/2.0 100 Trying") // accepted, then silence
		c.sendAudio(t, 200*time.Millisecond)
		id := answeredCallID(t, tb)
		command(t, tb, voice.TypeTransfer, voice.SubjectTransfer, map[string]any{"channel": "voice", "call_id": id, "target": "8014"})
		waitRefer(t, tr)
		typ, d := waitTransfer(t, tb)
		if typ != voice.TypeTransferFailed || d.Reason != "timeout" || d.Status != 0 {
			t.Fatalf("outcome %s %+v", typ, d)
		}
		if n := len(tb.events(t)[voice.TypeCallEnded]); n != 0 {
			t.Fatalf("the call ended after a transfer that timed out")
		}
	})

	t.Run("ReferRefused", func(t *testing.T) {
		t.Parallel()
		tb := start(t, nil, nil)
		tr, c := dial(t, tb)
		tr.scriptRefer(sip.StatusForbidden)
		c.sendAudio(t, 200*time.Millisecond)
		id := answeredCallID(t, tb)
		command(t, tb, voice.TypeTransfer, voice.SubjectTransfer, map[string]any{"channel": "voice", "call_id": id, "target": "sip:queue-vip@10.0.0.9"})
		if h := waitRefer(t, tr).GetHeader("Refer-To"); h == nil || h.Value() != "<sip:queue-vip@10.0.0.9>" {
			t.Fatalf("Refer-To %v", h)
		}
		typ, d := waitTransfer(t, tb)
		if typ != voice.TypeTransferFailed || d.Reason != "refused" || d.Status != 403 || d.ReferTo != "sip:queue-vip@10.0.0.9" {
			t.Fatalf("outcome %s %+v", typ, d)
		}
	})
}
