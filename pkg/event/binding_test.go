package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

func sample(t testing.TB) event.Event {
	t.Helper()
	e, err := event.New("omni.channel.message.received", "/connectors/wechatkf",
		map[string]any{"text": "你好 \"quoted\" 100%"},
		event.WithID("wechatkf:msg-1"),
		event.WithSubject("客户 42 / conv%1"),
		event.WithTime(time.Date(2026, 11, 27, 8, 30, 0, 123456789, time.UTC)),
		event.WithCorrelationID("corr-1"),
		event.WithPartitionKey("phone:+8613800138000"),
		event.WithDataSchema("https://omnibus.dev/schemas/omni.channel.message.received.json"),
	)
	if err != nil {
		t.Fatal(err)
	}
	e.SetExtension(event.ExtTraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	e.SetExtension(event.ExtTraceState, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	return e
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		encode func(event.Event) (nats.Header, []byte, error)
	}{
		{"binary", event.Encode},
		{"structured", event.EncodeStructured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := sample(t)
			h, body, err := tc.encode(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := event.Decode(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if in.String() != out.String() {
				t.Fatalf("round trip changed the event:\n in: %s\nout: %s", in, out)
			}
			if string(out.Data()) != string(in.Data()) {
				t.Fatalf("data %s != %s", out.Data(), in.Data())
			}
			for _, ext := range []string{event.ExtCorrelationID, event.ExtPartitionKey, event.ExtTraceParent, event.ExtTraceState} {
				if event.Ext(out, ext) != event.Ext(in, ext) {
					t.Errorf("extension %s: %q != %q", ext, event.Ext(out, ext), event.Ext(in, ext))
				}
			}
		})
	}
}

func TestBinaryHeaders(t *testing.T) {
	t.Parallel()
	h, body, err := event.Encode(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("ce-subject"); got != "%E5%AE%A2%E6%88%B7%2042%20/%20conv%251" {
		t.Errorf("subject not percent-encoded as the binding says: %q", got)
	}
	if h.Get("content-type") != event.ContentTypeJSON || h.Get("ce-specversion") != "1.0" {
		t.Errorf("headers: %v", h)
	}
	if !strings.Contains(string(body), "你好") {
		t.Errorf("body is not the data: %s", body)
	}
}

func TestDecodeCaseInsensitive(t *testing.T) {
	t.Parallel()
	h := nats.Header{
		"CE-SpecVersion": {"1.0"}, "Ce-Id": {"x1"}, "CE-SOURCE": {"/s"}, "ce-Type": {"omni.test"},
		"Content-Type": {"application/json"}, "Ce-Partitionkey": {"phone%3A%2B86"},
	}
	e, err := event.Decode(h, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "x1" || e.Type() != "omni.test" || e.DataContentType() != "application/json" || event.PartitionKey(e) != "phone:+86" {
		t.Fatalf("decoded %s", e)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h    nats.Header
	}{
		{"no headers", nats.Header{}},
		{"missing id", nats.Header{"ce-specversion": {"1.0"}, "ce-source": {"/s"}, "ce-type": {"t"}}},
		{"old spec", nats.Header{"ce-specversion": {"0.3"}, "ce-id": {"1"}, "ce-source": {"/s"}, "ce-type": {"t"}}},
		{"bad escape", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"%zz"}, "ce-source": {"/s"}, "ce-type": {"t"}}},
		{"bad time", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-source": {"/s"}, "ce-type": {"t"}, "ce-time": {"yesterday"}}},
		{"bad structured", nats.Header{"content-type": {"application/cloudevents+json; charset=utf-8"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := event.Decode(tc.h, []byte(`{`)); !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	h, body, _ := event.Encode(sample(f))
	f.Add(h.Get("ce-id"), h.Get("ce-subject"), h.Get("ce-time"), h.Get("ce-partitionkey"), body, false)
	_, sbody, _ := event.EncodeStructured(sample(f))
	f.Add("", "", "", "", sbody, true)
	f.Fuzz(func(t *testing.T, id, subject, tm, pk string, body []byte, structured bool) {
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"/fuzz"}, "ce-type": {"omni.fuzz"},
			"ce-subject": {subject}, "ce-time": {tm}, "ce-partitionkey": {pk}}
		if structured {
			h = nats.Header{"content-type": {event.ContentTypeStructured}}
		}
		e, err := event.Decode(h, body)
		if err != nil {
			if !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		// Invariant: whatever decodes re-encodes and decodes to the same event.
		h2, b2, err := event.Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
		e2, err := event.Decode(h2, b2)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if e.String() != e2.String() {
			t.Fatalf("not stable:\n%s\n%s", e, e2)
		}
	})
}
