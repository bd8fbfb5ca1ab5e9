package unifier_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
)

// A call the voice connector publishes on omni.in.voice.call (stored on a partition of it)
// reaches the live lane and lands on the conversation of the customer who wrote from WeChat
// with that phone number: the desk gets the ringing call with that customer, then its updates.
func TestCallThroughTheBus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	start(t, b.Client, pgtest.NewDBURL(t), nil)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Minute)
	const callID, caller = "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9e8", "+8613800138000"
	wechat := inbound(t, "m1", "wechatkf", "wechat_openid", "oWx1", "我等下打电话", t0, map[string]string{"kind": "phone", "value": "13800138000"})
	if err := b.Client.Publish(ctx, "omni.in.wechatkf.message", wechat); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 20*time.Second, "the WeChat message applied", func() bool { return deskCount(t, b, "omni.desk.message.added") == 1 })
	for i, kind := range []string{"started", "answered", "ended"} {
		at := t0.Add(time.Duration(10+i) * time.Second)
		data := map[string]any{"channel": "voice", "call_id": callID, "direction": "inbound", "trunk": "pstn", "codec": "PCMA",
			"from": map[string]string{"kind": "phone", "value": caller}, "to": map[string]string{"kind": "phone", "value": "+864001234567"}}
		if kind == "ended" {
			data["started_at"], data["answered_at"], data["ended_at"] = t0.Add(10*time.Second), t0.Add(11*time.Second), at
			data["duration_ms"], data["talk_ms"], data["hangup_side"], data["reason"] = 2000, 1000, "caller", "bye"
		} else {
			data["at"] = at
		}
		e, err := event.New("omni.channel.call."+kind, "/connectors/voice", data, event.WithID("voice:"+callID+":"+kind),
			event.WithTime(at), event.WithPartitionKey("phone:"+caller))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(ctx, "omni.in.voice.call", e); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitFor(t, 20*time.Second, "the call's desk events", func() bool {
		return deskCount(t, b, "omni.desk.call.ringing") == 1 && deskCount(t, b, "omni.desk.call.updated") == 2
	})
	var added, ringing struct {
		Conversation struct {
			ID       string   `json:"id"`
			Channels []string `json:"channels"`
		} `json:"conversation"`
		Customer struct {
			ID string `json:"id"`
		} `json:"customer"`
	}
	if err := json.Unmarshal(b.Events(t, bus.StreamDesk, "omni.desk.message.added")[0].Data(), &added); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Events(t, bus.StreamDesk, "omni.desk.call.ringing")[0].Data(), &ringing); err != nil {
		t.Fatal(err)
	}
	if ringing.Conversation.ID != added.Conversation.ID || ringing.Customer.ID != added.Customer.ID || len(ringing.Conversation.Channels) != 2 {
		t.Fatalf("the call rang on %+v, the WeChat message was on %+v", ringing, added)
	}
	if n := deskCount(t, b, "omni.desk.conversation.opened"); n != 1 {
		t.Fatalf("conversation.opened events: %d, want 1", n)
	}
}
