package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
)

// segment builds a transcript segment of call callID.
func segment(t testing.TB, callID, from string, n int, speaker, text string, final bool, at time.Time) bus.Delivery {
	t.Helper()
	return toneSegment(t, callID, from, n, speaker, text, final, at, nil)
}

// toneSegment builds a transcript segment with the caller's voice tone (none when tone is nil).
func toneSegment(t testing.TB, callID, from string, n int, speaker, text string, final bool, at time.Time, tone map[string]any) bus.Delivery {
	t.Helper()
	data := map[string]any{"channel": "voice", "call_id": callID, "segment_id": n, "speaker": speaker, "start_ms": n * 3000,
		"end_ms": n*3000 + 2500, "text": text, "final": final, "vendor": "iflytek", "model": "rtasr"}
	if tone != nil {
		data["tone"] = tone
	}
	kind := "p"
	if final {
		kind = "f"
	}
	e, err := event.New(engine.TypeSegment, "/connectors/voice", data,
		event.WithID("voice:"+callID+":"+speaker+":"+strconv.Itoa(n)+":"+kind), event.WithTime(at), event.WithPartitionKey("phone:"+from))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, Subject: "omni.in.voice.transcript"}
}

// The final segments of the caller's leg become the customer's voice messages on the
// conversation the call is on, in the order spoken, as inbound desk messages; partials, the
// agent's leg and empty finals are not stored; a redelivered segment changes nothing; a segment
// whose call is not recorded waits (RetryAfter) instead of failing for good.
func TestTranscriptOnTheCallsConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "sms:1", "sms", t0, phone))
	conv := b.strings(t, `SELECT id::text FROM conversations WHERE status = 'open'`)

	// A segment before its call is recorded: retried later, not dead-lettered.
	early := segment(t, callA, phoneN, 0, "caller", "你好", true, t0.Add(10*time.Minute+6*time.Second))
	errs := b.en.ApplyBatch(context.Background(), []bus.Delivery{early})
	if len(errs) != 1 || errs[0] == nil || bus.IsPermanent(errs[0]) {
		t.Fatalf("a segment of an unknown call: %v, want a retryable error", errs)
	}
	if d, ok := bus.RetryDelay(errs[0]); !ok || d <= 0 {
		t.Fatalf("a segment of an unknown call: %v, want a retry delay", errs[0])
	}

	// The call and its first segments in one batch, the rest in the next.
	at := t0.Add(10 * time.Minute)
	b.apply(t, call(t, "started", callA, phoneN, at, false), call(t, "answered", callA, phoneN, at.Add(5*time.Second), false),
		segment(t, callA, phoneN, 0, "caller", "你", false, at.Add(6*time.Second)), early,
		segment(t, callA, phoneN, 0, "callee", "您好，这里是客服中心", true, at.Add(7*time.Second)))
	b.apply(t, segment(t, callA, phoneN, 1, "caller", "我的银行卡被扣了两次钱", true, at.Add(9*time.Second)),
		segment(t, callA, phoneN, 2, "caller", "  ", true, at.Add(10*time.Second)),
		segment(t, callA, phoneN, 3, "caller", "订单号是 DD20261207001", true, at.Add(12*time.Second)))

	got := b.strings(t, `SELECT concat_ws(' ', conversation_id, channel, direction, body->>'text') FROM messages
		WHERE channel = 'voice' ORDER BY sent_at`)
	want := []string{conv[0] + " voice inbound 你好", conv[0] + " voice inbound 我的银行卡被扣了两次钱",
		conv[0] + " voice inbound 订单号是 DD20261207001"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("voice messages:\n got %q\nwant %q", got, want)
	}
	var texts []string
	for _, m := range b.outboxData(t, engine.TypeDeskMessageAdded) {
		msg := m["message"].(map[string]any)
		if msg["channel"] == "voice" {
			if msg["direction"] != "inbound" || msg["conversation_id"] != conv[0] {
				t.Fatalf("desk message of a segment: %v", msg)
			}
			texts = append(texts, msg["body"].(map[string]any)["text"].(string))
		}
	}
	if len(texts) != 3 || texts[1] != "我的银行卡被扣了两次钱" {
		t.Fatalf("desk messages of the transcript: %q", texts)
	}

	// Redelivered, the segments change nothing.
	dump, outbox, _ := state(t, b)
	b.apply(t, segment(t, callA, phoneN, 1, "caller", "我的银行卡被扣了两次钱", true, at.Add(9*time.Second)), early)
	if d, o, _ := state(t, b); d != dump || o != outbox {
		t.Fatal("a redelivered segment changed the store or the outbox")
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

// A final segment's voice tone is stored on the voice message's body beside its text, comes out
// the same in omni.desk.message.added (valid: the relay dead-letters nothing), and a segment
// without one stores a plain text body.
func TestTranscriptTone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := t0.Add(10 * time.Minute)
	tone := map[string]any{"energy_dbfs": -15.19, "pitch_hz": 127.14, "rate": 6.54,
		"delta": map[string]any{"energy_db": 5.07, "pitch_st": 8.5, "rate_pct": 22.6}, "arousal": 0.68, "label": "agitated", "baseline_ms": 3000}
	b.apply(t, call(t, "started", callA, phoneN, at, false), call(t, "answered", callA, phoneN, at.Add(5*time.Second), false),
		segment(t, callA, phoneN, 0, "caller", "你好，我想查一下我的信用卡账单。", true, at.Add(9*time.Second)),
		toneSegment(t, callA, phoneN, 1, "caller", "我的银行卡被扣了两次钱，你们到底怎么回事！", true, at.Add(15*time.Second), tone))

	var want any // the tone as JSON decodes it
	if raw, err := json.Marshal(tone); err != nil || json.Unmarshal(raw, &want) != nil {
		t.Fatal(err)
	}
	stored := b.strings(t, `SELECT body::text FROM messages WHERE channel = 'voice' ORDER BY sent_at`)
	if len(stored) != 2 {
		t.Fatalf("voice messages %q", stored)
	}
	var plain, toned map[string]any
	if err := json.Unmarshal([]byte(stored[0]), &plain); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(stored[1]), &toned); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain["tone"]; ok || plain["type"] != "text" {
		t.Errorf("a segment without tone stored %v", plain)
	}
	if !reflect.DeepEqual(toned["tone"], want) || toned["text"] != "我的银行卡被扣了两次钱，你们到底怎么回事！" {
		t.Errorf("stored body %v, want the segment's tone %v", toned, tone)
	}
	n := 0
	for _, m := range b.outboxData(t, engine.TypeDeskMessageAdded) {
		body := m["message"].(map[string]any)["body"].(map[string]any)
		if body["text"] == toned["text"] {
			n++
			if !reflect.DeepEqual(body["tone"], want) {
				t.Errorf("desk message body %v, want the tone %v", body, tone)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d desk messages of the toned segment", n)
	}
	nb := bustest.New(t, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if _, err := engine.NewRelay(b.pool, nb.Client, slog.New(slog.NewTextHandler(io.Discard, nil))).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := nb.StoredCount(t, bus.StreamDLQ, ">"); got != 0 {
		t.Fatalf("%d desk events dead-lettered", got)
	}
}

// A segment with no call id is refused for good.
func TestSegmentWithoutCall(t *testing.T) {
	t.Parallel()
	b := setup(t)
	errs := b.en.ApplyBatch(context.Background(), []bus.Delivery{segment(t, "", phoneN, 0, "caller", "hello", true, t0)})
	if len(errs) != 1 || !bus.IsPermanent(errs[0]) {
		t.Fatalf("errors: %v, want a permanent one", errs)
	}
}
