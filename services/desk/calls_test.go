package desk_test

import (
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
	w.publish("omni.desk.call.ringing", "omni.desk.call.ringing", map[string]any{
		"call":         w.callView(id, "ringing", start, map[string]any{"started_at": start}),
		"conversation": w.convView(w.conv, w.cust, "open", []string{"sms", "voice"}, w.t0, start),
		"customer": map[string]any{"id": w.cust, "display_name": "张伟", "created_at": w.t0, "profile": map[string]any{"vip_level": "gold"},
			"profile_sources": map[string]any{}, "identities": []map[string]string{{"kind": "phone", "masked": "+86 138****8000", "source": "sms"}}},
	}, event.WithSubject(w.conv))

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
