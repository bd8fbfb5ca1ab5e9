package desk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// callView is the unifier's view of call event kind of call id (schemas/desk.defs.json callView).
func (w *world) callView(id, state string, at time.Time, extra map[string]any) map[string]any {
	v := map[string]any{"call_id": id, "event_id": "voice:" + id + ":" + state, "conversation_id": w.conv, "customer_id": w.cust,
		"direction": "inbound", "from": map[string]string{"kind": "phone", "masked": "+86 138****8000", "source": "voice"},
		"to": map[string]string{"kind": "phone", "masked": "+86 400****4567", "source": "voice"}, "state": state, "at": at}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// ringing publishes the unifier's omni.desk.call.ringing of call id on the world's conversation
// (on channels) with its customer 张伟 (profile, and the caller's phone identity from channels[0]).
func (w *world) ringing(id string, start time.Time, channels []string, profile map[string]any) {
	w.t.Helper()
	w.publish("omni.desk.call.ringing", "omni.desk.call.ringing", map[string]any{
		"call":         w.callView(id, "ringing", start, map[string]any{"started_at": start}),
		"conversation": w.convView(w.conv, w.cust, "open", channels, w.t0, start),
		"customer": map[string]any{"id": w.cust, "display_name": "张伟", "created_at": w.t0, "profile": profile,
			"profile_sources": map[string]any{}, "identities": []map[string]string{{"kind": "phone", "masked": "+86 138****8000", "source": channels[0]}}},
	}, event.WithSubject(w.conv))
}

// A ringing call shows on the conversation's timeline with the caller's customer before it is
// answered (the ringing event alone brings both); its update makes it ended with its recording,
// and a late answered does not bring it back.
func TestCallRingingThenEnded(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	id := uuid.NewString()
	start := w.t0.Add(time.Minute)
	w.ringing(id, start, []string{"sms", "voice"}, map[string]any{"vip_level": "gold"})

	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 15*time.Second, "the ringing call on the timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return len(tl.Items) == 1
	})
	if c := tl.Items[0].Call; tl.Items[0].Kind != "call" || c == nil || c.CallID != id || c.State != "ringing" || !tl.Items[0].At.Equal(start) {
		t.Fatalf("timeline %+v", tl.Items)
	}
	var cu store.Customer
	if code := d.call(t, d.token, "GET", "/api/customers/"+w.cust, nil, &cu); code != 200 || cu.DisplayName != "张伟" || !strings.Contains(string(cu.Identities), "138****8000") {
		t.Fatalf("the caller's 360 panel before the answer: %d %+v", code, cu)
	}

	answered, ended := start.Add(5*time.Second), start.Add(3*time.Minute)
	rec := "file:///var/lib/omnibus/recordings/2026/12/07/" + id + "/caller.wav"
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", answered,
		map[string]any{"answered_at": answered})}, event.WithSubject(w.conv))
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "ended", ended,
		map[string]any{"started_at": start, "answered_at": answered, "ended_at": ended, "duration_ms": 180000, "talk_ms": 175000,
			"hangup_side": "caller", "reason": "bye", "recording_url": rec})}, event.WithSubject(w.conv))
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", answered,
		map[string]any{"answered_at": answered})}, event.WithSubject(w.conv))
	// A marker: the desk consumes in order, so once it shows, the call's updates are applied.
	w.toolResult("crm", "lookup", "completed", "corr-marker", map[string]any{"customer_id": w.cust,
		"query": map[string]string{"kind": "phone", "value": "+8613800138000"}, "provider": "salesforce", "found": false}, ended.Add(time.Second))
	bustest.WaitFor(t, 15*time.Second, "the marker after the call's updates", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return len(tl.Items) == 2
	})
	c := tl.Items[0].Call
	if c == nil || c.State != "ended" || c.RecordingURL != rec || c.TalkMS == nil || *c.TalkMS != 175000 || c.AnsweredAt == nil ||
		!c.AnsweredAt.Equal(answered) || c.HangupSide != "caller" {
		t.Fatalf("the ended call: %+v", c)
	}
}

// The call controls: hang-up, transfer and prompt of a live call are commands to the voice connector
// carrying the agent who asked, allowed to the conversation's assignee and supervisors only,
// refused for a call that is over (and a transfer or prompt before the answer); bad input publishes nothing.
func TestCallControls(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	id := uuid.NewString()
	start := w.t0.Add(time.Minute)
	w.ringing(id, start, []string{"voice"}, map[string]any{})
	hangup, transfer, prompt := "/api/calls/"+id+"/hangup", "/api/calls/"+id+"/transfer", "/api/calls/"+id+"/prompt"
	bustest.WaitFor(t, 15*time.Second, "the ringing call on the desk", func() bool {
		_, err := d.store.GetCall(context.Background(), id)
		return err == nil
	})

	// Unassigned: an agent may not; then agent-li takes the conversation and may.
	if code := d.call(t, d.token, "POST", hangup, nil, nil); code != 403 {
		t.Fatalf("hang-up of an unassigned conversation's call by an agent: %d, want 403", code)
	}
	if code := d.call(t, d.token, "POST", "/api/conversations/"+w.conv+"/assign", map[string]any{}, nil); code != 200 {
		t.Fatalf("take the conversation: %d", code)
	}
	intruder := d.idp.token(t, "agent-zhao", []string{"agent"}, nil)
	for name, tc := range map[string]struct {
		token, path string
		body        any
		want        int
	}{
		"another agent":           {intruder, hangup, nil, 403},
		"transfer while ringing":  {d.token, transfer, map[string]any{"target": "8012"}, 409},
		"prompt while ringing":    {d.token, prompt, map[string]any{"text": "您好"}, 409},
		"unknown call":            {d.super, "/api/calls/" + uuid.NewString() + "/hangup", nil, 404},
		"call id not a uuid":      {d.super, "/api/calls/x/hangup", nil, 400},
		"target on a hang-up":     {d.token, hangup, map[string]any{"target": "8012"}, 400},
		"unknown field":           {d.token, hangup, map[string]any{"why": "x"}, 400},
		"no token":                {"", hangup, nil, 401},
		"another agent, transfer": {intruder, transfer, map[string]any{"target": "8012"}, 403},
	} {
		if code := d.call(t, tc.token, "POST", tc.path, tc.body, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}

	answered := start.Add(5 * time.Second)
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", answered,
		map[string]any{"answered_at": answered})}, event.WithSubject(w.conv))
	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 15*time.Second, "the call answered", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return callState(tl.Items, id) == "answered"
	})
	for name, body := range map[string]any{
		"no target":        map[string]any{},
		"header injection": map[string]any{"target": "8012>;x=1"},
		"not sip":          map[string]any{"target": "http://pbx/8012"},
		"text on transfer": map[string]any{"target": "8012", "text": "hi"},
	} {
		if code := d.call(t, d.token, "POST", transfer, body, nil); code != 400 {
			t.Errorf("transfer, %s: %d, want 400", name, code)
		}
	}
	for name, body := range map[string]any{
		"no text":    map[string]any{},
		"blank text": map[string]any{"text": "   "},
		"too long":   map[string]any{"text": strings.Repeat("长", 301)},
		"target":     map[string]any{"text": "hi", "target": "8012"},
		"reason":     map[string]any{"text": "hi", "reason": "x"},
	} {
		if code := d.call(t, d.token, "POST", prompt, body, nil); code != 400 {
			t.Errorf("prompt, %s: %d, want 400", name, code)
		}
	}
	if n := b.StoredCount(t, bus.StreamOut, "omni.out.voice.>"); n != 0 {
		t.Fatalf("refused commands published %d events", n)
	}

	// Accepted: each command carries the call, its conversation and the agent who asked.
	for _, tc := range []struct {
		name, token, path, subject, typ string
		body, want                      map[string]any
	}{
		{"transfer", d.token, transfer, "omni.out.voice.call.transfer", "omni.channel.call.transfer.requested",
			map[string]any{"target": "8012"}, map[string]any{"target": "8012", "agent_id": "agent-li"}},
		{"prompt", d.token, prompt, "omni.out.voice.call.prompt", "omni.channel.call.prompt.requested",
			map[string]any{"text": "您好，请稍候"}, map[string]any{"text": "您好，请稍候", "agent_id": "agent-li"}},
		{"hang-up by a supervisor", d.super, hangup, "omni.out.voice.call.hangup", "omni.channel.call.hangup.requested",
			map[string]any{"reason": "customer asked"}, map[string]any{"reason": "customer asked", "agent_id": "supervisor-wang"}},
	} {
		var r map[string]any
		if code := d.call(t, tc.token, "POST", tc.path, tc.body, &r); code != 202 {
			t.Fatalf("%s: %d %v", tc.name, code, r)
		}
		e := lastEvent(t, b, bus.StreamOut, tc.subject)
		data := dataOf(t, e)
		ok := e.ID() == r["request_id"] && e.Type() == tc.typ && data["call_id"] == id && data["conversation_id"] == w.conv && data["channel"] == "voice"
		for k, v := range tc.want {
			ok = ok && data[k] == v
		}
		if !ok {
			t.Fatalf("%s: command %s %v", tc.name, e.Type(), data)
		}
	}

	// Once the call is over, 409 and nothing more is published.
	ended := answered.Add(time.Minute)
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "ended", ended,
		map[string]any{"ended_at": ended, "hangup_side": "omnibus", "reason": "hangup_requested"})}, event.WithSubject(w.conv))
	bustest.WaitFor(t, 15*time.Second, "the call ended", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return callState(tl.Items, id) == "ended"
	})
	if code := d.call(t, d.token, "POST", hangup, nil, nil); code != 409 {
		t.Errorf("hang-up of an ended call: %d, want 409", code)
	}
	if n := b.StoredCount(t, bus.StreamOut, "omni.out.voice.>"); n != 3 {
		t.Fatalf("commands stored: %d, want 3", n)
	}
}

// callState is the state of call id on a timeline ("" when it is not there).
func callState(items []store.TimelineItem, id string) string {
	for _, it := range items {
		if it.Call != nil && it.Call.CallID == id {
			return it.Call.State
		}
	}
	return ""
}

// A transfer's outcome shows on the call's timeline entry: the failure with its reason and the
// trunk's words, then the retry that worked; an older failure applied after it does not replace
// it, and a later update without an outcome (the call ending) keeps it.
func TestCallTransferOutcome(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	id := uuid.NewString()
	start := w.t0.Add(time.Minute)
	answered, failedAt, doneAt, ended := start.Add(5*time.Second), start.Add(time.Minute), start.Add(2*time.Minute), start.Add(3*time.Minute)
	w.ringing(id, start, []string{"voice"}, map[string]any{})
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", answered,
		map[string]any{"answered_at": answered})}, event.WithSubject(w.conv))
	update := func(state string, at time.Time, transfer map[string]any, extra map[string]any) {
		t.Helper()
		v := w.callView(id, state, at, extra)
		if transfer != nil {
			v["transfer"] = transfer
		}
		w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": v}, event.WithSubject(w.conv))
	}
	timeline := func(n int) *store.CallRow {
		t.Helper()
		var tl struct{ Items []store.TimelineItem }
		bustest.WaitFor(t, 15*time.Second, "the marker after the call's updates", func() bool {
			tl.Items = nil // decoding into the last poll's items would keep fields the response leaves out
			d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
			return len(tl.Items) == n
		})
		return tl.Items[0].Call
	}
	marker := func(corr string, at time.Time) { // the desk consumes in order: once it shows, what came before is applied
		w.toolResult("crm", "lookup", "completed", corr, map[string]any{"customer_id": w.cust,
			"query": map[string]string{"kind": "phone", "value": "+8613800138000"}, "provider": "salesforce", "found": false}, at)
	}

	update("answered", failedAt, map[string]any{"outcome": "failed", "target": "8002", "reason": "failed", "status": 486,
		"detail": "SIP/2.0 486 Busy Here", "agent_id": "agent-7", "at": failedAt}, map[string]any{"answered_at": answered})
	marker("corr-1", failedAt.Add(time.Second))
	c := timeline(2)
	if c == nil || c.Transfer == nil || c.Transfer.Outcome != "failed" || c.Transfer.Reason != "failed" || c.Transfer.Status != 486 ||
		c.Transfer.Detail != "SIP/2.0 486 Busy Here" || c.Transfer.Target != "8002" || c.Transfer.AgentID != "agent-7" ||
		!c.Transfer.At.Equal(failedAt) || c.State != "answered" {
		t.Fatalf("the failed transfer on the call: %+v", c)
	}

	update("answered", doneAt, map[string]any{"outcome": "transferred", "target": "8003", "at": doneAt}, map[string]any{"answered_at": answered})
	update("answered", failedAt.Add(-time.Second), map[string]any{"outcome": "failed", "target": "8001", "reason": "timeout",
		"at": failedAt.Add(-time.Second)}, map[string]any{"answered_at": answered})
	update("ended", ended, nil, map[string]any{"started_at": start, "answered_at": answered, "ended_at": ended, "duration_ms": 180000,
		"talk_ms": 175000, "hangup_side": "omnibus", "reason": "transferred"})
	marker("corr-2", ended.Add(time.Second))
	c = timeline(3)
	if c == nil || c.Transfer == nil || c.Transfer.Outcome != "transferred" || c.Transfer.Target != "8003" || c.Transfer.Reason != "" ||
		c.State != "ended" || c.Reason != "transferred" {
		t.Fatalf("the transferred call, after an older failure and its end: %+v (transfer %+v)", c, c.Transfer)
	}
}
