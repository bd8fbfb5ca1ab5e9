package engine

import (
	"bytes"
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
	enc, err := encodeOutbox(rows)
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
		e.partitionKey != rows[0].partitionKey || e.corr != "e1" || string(e.data) != `{"text":"你好"}` ||
		!e.at.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("decoded %+v", e)
	}
	if got[1].ceSubject != "" || got[1].corr != "" || string(got[1].data) != `{}` {
		t.Fatalf("decoded %+v", got[1])
	}
	again, err := encodeOutboxEvents(got)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("re-encoded differs (%v)", err)
	}
	for _, bad := range [][]byte{nil, {2}, enc[:len(enc)-1], append(enc[:1:1], 0, 0, 0, 9)} {
		if _, err := decodeOutbox(bad); !errors.Is(err, errOutboxBatch) {
			t.Errorf("decode %x: %v, want a malformed batch", bad, err)
		}
	}
}

// The relay decodes what Postgres holds: whatever the bytes, decoding fails cleanly or gives
// events that encode back to the same bytes.
func FuzzOutboxDecode(f *testing.F) {
	enc, err := encodeOutbox([]outboxRow{{id: "a", subject: "omni.desk.message.added", typ: "t", at: time.Unix(1, 0), data: 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{1})
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
			if !bytes.Equal(b, []byte{outboxVersion}) {
				t.Fatalf("no events from %x", b)
			}
			return
		}
		again, err := encodeOutboxEvents(evs)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encoded back %x (%v)", b, again, err)
		}
	})
}
