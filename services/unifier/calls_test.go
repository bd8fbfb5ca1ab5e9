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

// A transfer's outcome (omni.in.voice.transfer) reaches the desk on the call: a failure with its
// reason, then the retry that worked; an older failure delivered after both changes nothing,
// on the desk or in the calls row.
func TestCallTransferOutcomeThroughTheBus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	dbURL := pgtest.NewDBURL(t)
	start(t, b.Client, dbURL, nil)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	const callID, caller = "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9e9", "+8613800138001"
	publish := func(subject, typ, id string, at time.Time, data map[string]any) {
		t.Helper()
		data["channel"], data["call_id"] = "voice", callID
		e, err := event.New(typ, "/connectors/voice", data, event.WithID(id), event.WithTime(at), event.WithPartitionKey("phone:"+caller))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(ctx, subject, e); err != nil {
			t.Fatal(err)
		}
	}
	for i, kind := range []string{"started", "answered"} {
		at := t0.Add(time.Duration(i) * time.Second)
		publish("omni.in.voice.call", "omni.channel.call."+kind, "voice:"+callID+":"+kind, at, map[string]any{"direction": "inbound",
			"trunk": "pstn", "codec": "PCMA", "at": at, "from": map[string]string{"kind": "phone", "value": caller},
			"to": map[string]string{"kind": "phone", "value": "+864001234567"}})
	}
	failedAt, doneAt := t0.Add(10*time.Second), t0.Add(20*time.Second)
	publish("omni.in.voice.transfer", "omni.channel.call.transfer.failed", "voice:"+callID+":transfer:1", failedAt, map[string]any{
		"target": "8002", "refer_to": "sip:8002@pbx.example", "status": 486, "reason": "failed", "detail": "SIP/2.0 486 Busy Here",
		"agent_id": "agent-7", "at": failedAt})
	bustest.WaitFor(t, 20*time.Second, "the failed transfer's update", func() bool { return deskCount(t, b, "omni.desk.call.updated") == 2 })
	publish("omni.in.voice.transfer", "omni.channel.call.transferred", "voice:"+callID+":transfer:2", doneAt, map[string]any{
		"target": "8003", "refer_to": "sip:8003@pbx.example", "agent_id": "agent-7", "at": doneAt})
	bustest.WaitFor(t, 20*time.Second, "the transfer's update", func() bool { return deskCount(t, b, "omni.desk.call.updated") == 3 })
	// An older failure, redelivered late under a new id: history, not news.
	publish("omni.in.voice.transfer", "omni.channel.call.transfer.failed", "voice:"+callID+":transfer:0", t0.Add(5*time.Second),
		map[string]any{"target": "8001", "reason": "timeout", "at": t0.Add(5 * time.Second)})
	// The marker after it: once its update is out, the older failure was applied before.
	publish("omni.in.voice.call", "omni.channel.call.ended", "voice:"+callID+":ended", doneAt, map[string]any{"direction": "inbound",
		"trunk": "pstn", "codec": "PCMA", "from": map[string]string{"kind": "phone", "value": caller},
		"to": map[string]string{"kind": "phone", "value": "+864001234567"}, "started_at": t0, "answered_at": t0.Add(time.Second),
		"ended_at": doneAt, "duration_ms": 20000, "talk_ms": 19000, "hangup_side": "omnibus", "reason": "transferred"})
	bustest.WaitFor(t, 20*time.Second, "the ended update", func() bool { return deskCount(t, b, "omni.desk.call.updated") == 4 })

	type view struct {
		Call struct {
			CallID   string                  `json:"call_id"`
			State    string                  `json:"state"`
			From     struct{ Masked string } `json:"from"`
			Transfer *struct {
				Outcome, Target, Reason, Detail, AgentID string
				Status                                   int
				At                                       time.Time
			} `json:"transfer"`
		} `json:"call"`
	}
	var got []view
	for _, e := range b.Events(t, bus.StreamDesk, "omni.desk.call.updated") {
		var v view
		if err := json.Unmarshal(e.Data(), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 4 {
		t.Fatalf("%d call updates, want 4 (answered, failed, transferred, ended)", len(got))
	}
	failed, done := got[1].Call, got[2].Call
	if failed.Transfer == nil || failed.Transfer.Outcome != "failed" || failed.Transfer.Reason != "failed" || failed.Transfer.Status != 486 ||
		failed.Transfer.Detail != "SIP/2.0 486 Busy Here" || failed.Transfer.Target != "8002" || !failed.Transfer.At.Equal(failedAt) ||
		failed.State != "answered" || failed.CallID != callID || failed.From.Masked == "" {
		t.Errorf("failed transfer on the desk: %+v (transfer %+v)", failed, failed.Transfer)
	}
	if done.Transfer == nil || done.Transfer.Outcome != "transferred" || done.Transfer.Target != "8003" || done.Transfer.Reason != "" {
		t.Errorf("transfer on the desk: %+v (transfer %+v)", done, done.Transfer)
	}
	if got[3].Call.State != "ended" || got[3].Call.Transfer != nil {
		t.Errorf("ended update: %+v", got[3].Call)
	}
	var outcome, target string
	if err := openPool(t, dbURL).QueryRow(ctx, `SELECT transfer->>'outcome', transfer->>'target' FROM calls WHERE call_id = $1`, callID).
		Scan(&outcome, &target); err != nil {
		t.Fatal(err)
	}
	if outcome != "transferred" || target != "8003" {
		t.Errorf("calls row's transfer: %s to %s, want the latest (transferred to 8003)", outcome, target)
	}
}

// A call's transcript state reaches the desk on the call and stays on its row: a SIP call is
// live while answered, then partial as its ended event says; a cloud contact centre call is
// pending after it ended, then complete when omni.channel.call.transcribed comes. A final state
// stays: a transcription outcome for the SIP call after its partial changes nothing.
func TestCallTranscriptStateThroughTheBus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	dbURL := pgtest.NewDBURL(t)
	start(t, b.Client, dbURL, nil)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	const sipCall, tcccCall, caller = "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9ea", "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9eb", "+8613800138002"
	publish := func(subject, typ, id string, at time.Time, data map[string]any) {
		t.Helper()
		data["channel"] = "voice"
		e, err := event.New(typ, "/connectors/voice", data, event.WithID(id), event.WithTime(at), event.WithPartitionKey("phone:"+caller))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(ctx, subject, e); err != nil {
			t.Fatal(err)
		}
	}
	party := func(callID string, extra map[string]any) map[string]any {
		d := map[string]any{"call_id": callID, "direction": "inbound", "trunk": "pstn", "codec": "PCMA",
			"from": map[string]string{"kind": "phone", "value": caller}, "to": map[string]string{"kind": "phone", "value": "+864001234567"}}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	ended := func(callID, transcript string, at time.Time) map[string]any {
		return party(callID, map[string]any{"started_at": t0, "answered_at": t0.Add(time.Second), "ended_at": at, "duration_ms": 30000,
			"talk_ms": 29000, "hangup_side": "caller", "reason": "bye", "transcript": transcript})
	}
	// The SIP call: started, answered (live), ended (partial).
	publish("omni.in.voice.call", "omni.channel.call.started", "voice:"+sipCall+":started", t0, party(sipCall, map[string]any{"at": t0}))
	publish("omni.in.voice.call", "omni.channel.call.answered", "voice:"+sipCall+":answered", t0.Add(time.Second),
		party(sipCall, map[string]any{"at": t0.Add(time.Second), "transcript": "live"}))
	bustest.WaitFor(t, 20*time.Second, "the answered update", func() bool { return deskCount(t, b, "omni.desk.call.updated") == 1 })
	publish("omni.in.voice.call", "omni.channel.call.ended", "voice:"+sipCall+":ended", t0.Add(30*time.Second), ended(sipCall, "partial", t0.Add(30*time.Second)))
	// The provider's call: started and ended (pending) together, as the voice connector publishes a call record.
	tcccEnd := t0.Add(40 * time.Second)
	publish("omni.in.voice.call", "omni.channel.call.started", "voice:"+tcccCall+":started", t0.Add(35*time.Second),
		party(tcccCall, map[string]any{"at": t0.Add(35 * time.Second), "provider": "tccc", "trunk": "tccc"}))
	tcccEnded := ended(tcccCall, "pending", tcccEnd)
	tcccEnded["started_at"], tcccEnded["answered_at"], tcccEnded["provider"], tcccEnded["trunk"] = t0.Add(35*time.Second), t0.Add(36*time.Second), "tccc", "tccc"
	publish("omni.in.voice.call", "omni.channel.call.ended", "voice:"+tcccCall+":ended", tcccEnd, tcccEnded)
	bustest.WaitFor(t, 20*time.Second, "the ended updates", func() bool { return deskCount(t, b, "omni.desk.call.updated") == 3 })
	// A transcription outcome for the SIP call, whose partial is final: nothing changes. Then the
	// provider call's outcome, on the same partition: once its update is out, the first was applied.
	transcribed := func(callID, state string, at time.Time) map[string]any {
		return map[string]any{"call_id": callID, "provider": "tccc", "transcript": state, "at": at,
			"files": []map[string]any{{"name": "call", "kind": "call", "outcome": "transcribed", "attempts": 0}}}
	}
	publish("omni.in.voice.transcription", "omni.channel.call.transcribed", "voice:"+sipCall+":transcribed", t0.Add(50*time.Second),
		transcribed(sipCall, "complete", t0.Add(50*time.Second)))
	doneAt := t0.Add(55 * time.Second)
	publish("omni.in.voice.transcription", "omni.channel.call.transcribed", "voice:"+tcccCall+":transcribed", doneAt,
		transcribed(tcccCall, "complete", doneAt))
	bustest.WaitFor(t, 20*time.Second, "the transcription's update", func() bool { return deskCount(t, b, "omni.desk.call.updated") >= 4 })

	type view struct {
		Call struct {
			CallID     string                  `json:"call_id"`
			State      string                  `json:"state"`
			Transcript string                  `json:"transcript"`
			At         time.Time               `json:"at"`
			Recording  string                  `json:"recording_url"`
			From       struct{ Masked string } `json:"from"`
		} `json:"call"`
	}
	var got []view
	for _, e := range b.Events(t, bus.StreamDesk, "omni.desk.call.updated") {
		var v view
		if err := json.Unmarshal(e.Data(), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 4 {
		t.Fatalf("%d call updates, want 4 (SIP answered, SIP ended, TCCC ended, TCCC transcribed): %+v", len(got), got)
	}
	want := []struct{ call, state, transcript string }{
		{sipCall, "answered", "live"}, {sipCall, "ended", "partial"}, {tcccCall, "ended", "pending"}, {tcccCall, "ended", "complete"},
	}
	for i, w := range want {
		if c := got[i].Call; c.CallID != w.call || c.State != w.state || c.Transcript != w.transcript {
			t.Errorf("update %d: call %s %s transcript %q, want %s %s %q", i, c.CallID, c.State, c.Transcript, w.call, w.state, w.transcript)
		}
	}
	if c := got[3].Call; !c.At.Equal(doneAt) || c.From.Masked == "" {
		t.Errorf("the transcription's update: %+v, want at %s with the call's parties", c, doneAt)
	}
	rows, err := openPool(t, dbURL).Query(ctx, `SELECT call_id, coalesce(transcript, '') FROM calls ORDER BY call_id`)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for rows.Next() {
		var id, tr string
		if err := rows.Scan(&id, &tr); err != nil {
			t.Fatal(err)
		}
		states[id] = tr
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if states[sipCall] != "partial" || states[tcccCall] != "complete" {
		t.Errorf("calls rows' transcript: %v, want the SIP call partial (its ended event's) and the TCCC call complete", states)
	}
}
