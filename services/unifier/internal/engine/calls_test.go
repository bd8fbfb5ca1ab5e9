package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
)

const (
	callA   = "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9e8"
	callB   = "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9e9"
	hotline = "+864001234567"
)

// call builds event kind (started, answered, ended) of inbound call callID from number from.
// answered, for ended, says whether the call was answered.
func call(t testing.TB, kind, callID, from string, at time.Time, answered bool) bus.Delivery {
	t.Helper()
	data := map[string]any{"channel": "voice", "call_id": callID, "sip_call_id": "sip-" + callID, "direction": "inbound",
		"from": map[string]string{"kind": "phone", "value": from}, "to": map[string]string{"kind": "phone", "value": hotline},
		"trunk": "pstn", "codec": "PCMA"}
	switch kind {
	case "started", "answered":
		data["at"] = at
	case "ended":
		started := at.Add(-3 * time.Minute)
		data["started_at"], data["ended_at"], data["duration_ms"] = started, at, 180000
		data["hangup_side"], data["reason"], data["talk_ms"] = "caller", "cancel", 0
		if answered {
			data["answered_at"], data["talk_ms"], data["reason"] = started.Add(5*time.Second), 175000, "bye"
			data["recording"] = map[string]any{"legs": []map[string]any{{"leg": "caller", "url": "file:///rec/" + callID + "/caller.wav",
				"format": "audio/wav", "sample_rate": 8000, "duration_ms": 175000, "bytes": 2800044}}}
		}
	}
	e, err := event.New("omni.channel.call."+kind, "/connectors/voice", data, event.WithID("voice:"+callID+":"+kind),
		event.WithTime(at), event.WithPartitionKey("phone:"+from))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, Subject: "omni.in.voice.call"}
}

// outboxData returns the data of the outbox events of type typ, in order.
func (b *bundle) outboxData(t testing.TB, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, s := range b.strings(t, `SELECT data::text FROM outbox WHERE type = $1 ORDER BY seq`, typ) {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// A call from a number the customer wrote from by SMS lands on that customer's open
// conversation; started, answered and ended fill one calls row; the desk gets the ringing call
// with the customer's view (screen pop), then its updates, all valid against their schemas.
func TestCallOnTheCustomersConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "sms:1", "sms", t0, phone), msg(t, "wechatkf:1", "wechatkf", t0.Add(time.Minute), openid, phone))
	cust := b.customerOf(t, "phone", phoneN)
	conv := b.strings(t, `SELECT id::text FROM conversations WHERE status = 'open'`)
	if len(conv) != 1 {
		t.Fatalf("open conversations: %v", conv)
	}
	b.apply(t, call(t, "started", callA, phoneN, t0.Add(10*time.Minute), false))
	b.apply(t, call(t, "answered", callA, phoneN, t0.Add(10*time.Minute+5*time.Second), false),
		call(t, "ended", callA, phoneN, t0.Add(13*time.Minute), true))

	got := b.strings(t, `SELECT concat_ws(' ', conversation_id, customer_id, direction, from_value, to_value,
		started_at AT TIME ZONE 'UTC', answered_at AT TIME ZONE 'UTC', ended_at AT TIME ZONE 'UTC', hangup_side, end_reason, recording_url)
		FROM calls`)
	want := conv[0] + " " + cust + " inbound " + phoneN + " " + hotline +
		" 2026-11-27 08:10:00 2026-11-27 08:10:05 2026-11-27 08:13:00 caller bye file:///rec/" + callA + "/caller.wav"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("calls:\n got %v\nwant %s", got, want)
	}
	if ch := b.strings(t, `SELECT array_to_string(channels, ',') FROM conversations`); len(ch) != 1 || ch[0] != "sms,wechatkf,voice" {
		t.Fatalf("channels: %v", ch)
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE channel = 'voice'`); n != 0 {
		t.Fatalf("%d voice messages: a call is not a message", n)
	}
	ringing := b.outboxData(t, engine.TypeDeskCallRinging)
	if len(ringing) != 1 {
		t.Fatalf("ringing events: %v", ringing)
	}
	r := ringing[0]
	c, cv, cu := r["call"].(map[string]any), r["conversation"].(map[string]any), r["customer"].(map[string]any)
	if c["state"] != "ringing" || c["conversation_id"] != conv[0] || cv["id"] != conv[0] || cu["id"] != cust {
		t.Fatalf("ringing: %v", r)
	}
	if ids := cu["identities"].([]any); len(ids) != 2 {
		t.Fatalf("the screen pop shows the customer's identities: %v", ids)
	}
	updated := b.outboxData(t, engine.TypeDeskCallUpdated)
	if len(updated) != 2 {
		t.Fatalf("updated events: %v", updated)
	}
	if u := updated[1]["call"].(map[string]any); u["state"] != "ended" || u["recording_url"] != "file:///rec/"+callA+"/caller.wav" ||
		u["talk_ms"] != float64(175000) {
		t.Fatalf("ended: %v", u)
	}

	// Redelivered and replayed, the call's events change nothing.
	dump, outbox, _ := state(t, b)
	b.apply(t, call(t, "ended", callA, phoneN, t0.Add(13*time.Minute), true), call(t, "started", callA, phoneN, t0.Add(10*time.Minute), false))
	if d, o, _ := state(t, b); d != dump || o != outbox {
		t.Fatal("a redelivered call event changed the store or the outbox")
	}
	if n := b.count(t, `SELECT count(*) FROM calls`); n != 1 {
		t.Fatalf("%d calls", n)
	}

	// Every desk event is valid: the relay dead-letters none.
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	rows := b.count(t, `SELECT count(*) FROM outbox`)
	if _, err := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil))).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := nb.StoredCount(t, bus.StreamDLQ, ">"); got != 0 {
		t.Fatalf("%d desk events dead-lettered", got)
	}
	checkRelayedOnce(t, b, nb, rows)
}

// A missed call (started, then ended without an answer) from a new number opens a voice
// conversation for a new customer and is missed on the desk. A call whose ended comes first
// (answered and started lost or late) is recorded from ended; its late answered and started
// change nothing the row knew and send the desk nothing, so it stays ended there.
func TestMissedCallAndEventsOutOfOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const caller = "+8613900139000"
	b.apply(t, call(t, "started", callB, caller, t0, false))
	b.apply(t, call(t, "ended", callB, caller, t0.Add(3*time.Minute), false))
	b.apply(t, call(t, "ended", callA, caller, t0.Add(13*time.Minute), true))
	b.apply(t, call(t, "answered", callA, caller, t0.Add(10*time.Minute+5*time.Second), false), call(t, "started", callA, caller, t0.Add(10*time.Minute), false))
	got := b.strings(t, `SELECT concat_ws(' ', call_id, started_at AT TIME ZONE 'UTC', coalesce((answered_at AT TIME ZONE 'UTC')::text, '-'),
		ended_at AT TIME ZONE 'UTC', end_reason, coalesce(recording_url, '-'), event_id) FROM calls ORDER BY started_at`)
	want := []string{
		callB + " 2026-11-27 08:00:00 - 2026-11-27 08:03:00 cancel - voice:" + callB + ":started",
		callA + " 2026-11-27 08:10:00 2026-11-27 08:10:05 2026-11-27 08:13:00 bye file:///rec/" + callA + "/caller.wav voice:" + callA + ":ended",
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
	if ch := b.strings(t, `SELECT array_to_string(channels, ',') || ' ' || status FROM conversations`); len(ch) != 1 || ch[0] != "voice open" {
		t.Fatalf("conversations: %v", ch)
	}
	if n := b.count(t, `SELECT count(*) FROM customers`); n != 1 {
		t.Fatalf("%d customers", n)
	}
	var states []string
	for _, u := range b.outboxData(t, engine.TypeDeskCallUpdated) {
		c := u["call"].(map[string]any)
		states = append(states, c["call_id"].(string)[len(c["call_id"].(string))-1:]+":"+c["state"].(string))
	}
	if len(states) != 2 || states[0] != "9:missed" || states[1] != "8:ended" {
		t.Fatalf("desk updates: %v (want B missed, A ended, nothing after)", states)
	}
	if n := b.outboxTypes(t)[engine.TypeDeskCallRinging]; n != 1 {
		t.Fatalf("%d ringing events, want 1 (B's)", n)
	}
}

// The three events of a call in one batch make one row and the same desk events as one by one.
func TestCallInOneBatch(t *testing.T) {
	t.Parallel()
	one, all := setup(t), setup(t)
	evs := []bus.Delivery{call(t, "started", callA, phoneN, t0, false), call(t, "answered", callA, phoneN, t0.Add(5*time.Second), false),
		call(t, "ended", callA, phoneN, t0.Add(3*time.Minute), true)}
	for _, e := range evs {
		one.apply(t, e)
	}
	all.apply(t, evs...)
	d1, o1, _ := state(t, one)
	d2, o2, _ := state(t, all)
	c1 := one.strings(t, `SELECT row_to_json(c)::text FROM calls c`)
	c2 := all.strings(t, `SELECT row_to_json(c)::text FROM calls c`)
	if d1 != d2 || o1 != o2 || len(c1) != 1 || c1[0] != c2[0] {
		t.Fatalf("one by one and in one batch differ:\n%s\n%s\n%v\n%v", firstDiff(d1, d2), firstDiff(o1, o2), c1, c2)
	}
}

// A call from a number not yet linked opens its own customer; when a message links that number
// to an older customer, the merge takes the call along, and an unmerge gives it back.
func TestCallFollowsMergeAndUnmerge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "wechatkf:1", "wechatkf", t0, openid))
	b.apply(t, call(t, "started", callA, phoneN, t0.Add(time.Minute), false))
	caller := b.customerOf(t, "phone", phoneN)
	b.apply(t, msg(t, "wechatkf:2", "wechatkf", t0.Add(2*time.Minute), openid, phone))
	into := b.customerOf(t, "wechat_openid", openid.value)
	if got := b.strings(t, `SELECT customer_id::text FROM calls`); len(got) != 1 || got[0] != into || into == caller {
		t.Fatalf("after the merge the call's customer is %v, want %s (not %s)", got, into, caller)
	}
	merge := b.strings(t, `SELECT id::text FROM customer_merges`)
	if len(merge) != 1 {
		t.Fatalf("merges: %v", merge)
	}
	b.apply(t, command(t, "unmerge-1", engine.TypeUnmergeRequested, t0.Add(3*time.Minute), map[string]any{"merge_id": merge[0]}))
	if got := b.strings(t, `SELECT customer_id::text FROM calls`); len(got) != 1 || got[0] != caller {
		t.Fatalf("after the unmerge the call's customer is %v, want %s", got, caller)
	}
}
