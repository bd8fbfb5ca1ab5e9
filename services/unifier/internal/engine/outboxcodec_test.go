package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestOutboxCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 27, 8, 20, 0, 123456789, time.UTC)
	rows := []outboxRow{
		{id: "unifier:desk.message.added:e1", subject: "omni.desk.message.added", typ: "omni.desk.message.added",
			ceSubject: "c1", partitionKey: "phone:+8613800138000", corr: "e1", at: at, data: map[string]any{"text": "你好"}},
		{id: "unifier:tool.crm.lookup.requested:e1:x", subject: "omni.tool.crm.lookup.requested", typ: "omni.tool.crm.lookup.requested",
			at: at, data: json.RawMessage(`{}`)},
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	enc, err := encodeOutbox(rows, map[string]string{"e1": tp})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeOutbox(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	if e.id != rows[0].id || e.subject != rows[0].subject || e.typ != rows[0].typ || e.ceSubject != "c1" ||
		e.partitionKey != rows[0].partitionKey || e.corr != "e1" || e.trace != tp || string(e.data) != `{"text":"你好"}` ||
		!e.at.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("decoded %+v", e)
	}
	if got[1].ceSubject != "" || got[1].corr != "" || got[1].trace != "" || string(got[1].data) != `{}` {
		t.Fatalf("decoded %+v", got[1])
	}
	again, err := encodeOutboxEvents(got)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("re-encoded differs (%v)", err)
	}
	if ce, err := e.cloudEvent(); err != nil || ce.Extensions()["traceparent"] != tp {
		t.Fatalf("the event's traceparent: %v (%v)", ce.Extensions(), err)
	}
	// A version 1 batch (written before migration 00009) has no traceparent and still decodes.
	v1 := encodeV1(got)
	old, err := decodeOutbox(v1)
	if err != nil || len(old) != 2 || old[0].id != e.id || old[0].trace != "" || string(old[0].data) != string(e.data) {
		t.Fatalf("version 1: %+v (%v)", old, err)
	}
	for _, bad := range [][]byte{nil, {3}, enc[:len(enc)-1], append(enc[:1:1], 0, 0, 0, 9)} {
		if _, err := decodeOutbox(bad); !errors.Is(err, errOutboxBatch) {
			t.Errorf("decode %x: %v, want a malformed batch", bad, err)
		}
	}
}

// The relay decodes what Postgres holds: whatever the bytes, decoding fails cleanly or gives
// events that encode back to the same bytes.
func FuzzOutboxDecode(f *testing.F) {
	enc, err := encodeOutbox([]outboxRow{{id: "a", subject: "omni.desk.message.added", typ: "t", corr: "c", at: time.Unix(1, 0), data: 1}},
		map[string]string{"c": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(encodeV1([]outboxEvent{{id: "a", subject: "s", typ: "t", at: time.Unix(1, 0), data: []byte("1")}}))
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := decodeOutbox(b)
		if err != nil {
			if !errors.Is(err, errOutboxBatch) {
				t.Fatalf("error %v is not a malformed batch", err)
			}
			return
		}
		if len(evs) == 0 {
			if len(b) != 1 {
				t.Fatalf("no events from %x", b)
			}
			return
		}
		again := encodeV1(evs)
		if b[0] == outboxVersion {
			if again, err = encodeOutboxEvents(evs); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encoded back %x", b, again)
		}
	})
}

// encodeV1 encodes events as a version 1 batch (no traceparent), as the engine wrote them before
// migration 00009.
func encodeV1(evs []outboxEvent) []byte {
	b := []byte{outboxVersionV1}
	for _, e := range evs {
		for _, s := range [...]string{e.id, e.subject, e.typ, e.ceSubject, e.partitionKey, e.corr} {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(e.at.UnixMicro()))
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b
}
