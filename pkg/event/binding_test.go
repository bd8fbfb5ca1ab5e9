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
	// As the CloudEvents NATS binding and the official SDK write them: values as they are.
	if got := h.Get("ce-subject"); got != "客户 42 / conv%1" || h.Get(event.HeaderEncoding) != event.EncodingRaw {
		t.Errorf("subject %q, %s %q; want the value as it is, marked raw", got, event.HeaderEncoding, h.Get(event.HeaderEncoding))
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
		{"not UTF-8", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"\xff"}, "ce-source": {"/s"}, "ce-type": {"t"}}},
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

// Header values are read as the message says they were written: raw (this version, the official
// SDK), or percent-encoded (earlier omnibus versions, whose events stay in the log); a value that
// is not a valid percent-encoding in an unmarked message (an SDK producer's "100%") is taken as it
// is. A value a NATS header cannot carry (a control character) makes Encode percent-encode the
// whole message, which then decodes to the same event.
func TestHeaderValueEncodings(t *testing.T) {
	t.Parallel()
	base := func(extra nats.Header) nats.Header {
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"x1"}, "ce-source": {"/s"}, "ce-type": {"omni.test"}, "content-type": {"application/json"}}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, tc := range []struct {
		name string
		h    nats.Header
		want string
	}{
		{"legacy percent-encoded", base(nats.Header{"ce-subject": {"%E5%AE%A2%E6%88%B7%2042"}}), "客户 42"},
		{"raw marked", base(nats.Header{"ce-subject": {"%E5%AE%A2 100%"}, event.HeaderEncoding: {event.EncodingRaw}}), "%E5%AE%A2 100%"},
		{"unmarked, not an escape (SDK)", base(nats.Header{"ce-subject": {"100% \"quoted\" 客户"}}), "100% \"quoted\" 客户"},
	} {
		e, err := event.Decode(tc.h, []byte(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if e.Subject() != tc.want {
			t.Errorf("%s: subject %q, want %q", tc.name, e.Subject(), tc.want)
		}
	}
	in := sample(t)
	in.SetSubject("line one\nline two\t%")
	h, body, err := event.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if h.Get(event.HeaderEncoding) != "" || strings.ContainsAny(h.Get("ce-subject"), "\n\t") {
		t.Fatalf("a control character went out raw: %v", h)
	}
	out, err := event.Decode(h, body)
	if err != nil || out.Subject() != in.Subject() {
		t.Fatalf("round trip: %q %v", out.Subject(), err)
	}
}

// A structured event as the official SDK's NATS binding sends it: the JSON event as the body,
// no content-type header, no ce- headers.
func TestDecodeStructuredWithoutContentType(t *testing.T) {
	t.Parallel()
	_, body, err := event.EncodeStructured(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := event.Decode(nats.Header{}, body)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != sample(t).ID() || e.Subject() != sample(t).Subject() {
		t.Fatalf("decoded %s", e)
	}
	if _, err := event.Decode(nil, body); err != nil {
		t.Fatalf("no headers at all: %v", err)
	}
}
