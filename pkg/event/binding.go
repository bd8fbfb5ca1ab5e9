package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Header names of the CloudEvents NATS protocol binding.
const (
	HeaderPrefix      = "ce-"
	HeaderContentType = "content-type"
	// ContentTypeStructured marks a structured-mode message: the whole event, JSON-encoded, is the body.
	ContentTypeStructured = "application/cloudevents+json"
	// HeaderEncoding says how the ce- header values of a binary-mode message are written. Encode
	// sets it to EncodingRaw: values as they are, as the CloudEvents NATS binding and the official
	// SDK write and read them (the SDK ignores this header). A message without it is read as
	// earlier omnibus versions wrote it: percent-encoded where the value held a byte outside
	// printable ASCII, '"' or '%' — and a value that is not a valid percent-encoding (an SDK
	// producer's "100%") as it is.
	HeaderEncoding = "Omnibus-Ce-Encoding"
	EncodingRaw    = "raw"
)

// Encode returns the NATS headers and body of e in binary content mode.
// It returns an error wrapping ErrInvalid when e does not validate.
func Encode(e Event) (nats.Header, []byte, error) {
	if err := e.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	exts := extensions(e)
	h := make(nats.Header, 9+len(exts))
	// Values go as they are, unless one holds what a NATS header line cannot (a control
	// character): then every value is percent-encoded, as earlier omnibus versions wrote them,
	// and the message says so by lacking HeaderEncoding.
	raw := headerValueOK(e.ID()) && headerValueOK(e.Source()) && headerValueOK(e.Type()) &&
		headerValueOK(e.Subject()) && headerValueOK(e.DataSchema())
	for _, v := range exts {
		if s, ok := v.(string); ok {
			raw = raw && headerValueOK(s)
		}
	}
	if raw {
		h[HeaderEncoding] = []string{EncodingRaw}
	}
	setExt := func(name, v string) {
		if !raw {
			v = percentEncode(v)
		}
		h[HeaderPrefix+name] = []string{v}
	}
	set := func(name, v string) {
		if v == "" {
			return // an optional attribute left out
		}
		if !raw {
			v = percentEncode(v)
		}
		h[HeaderPrefix+name] = []string{v}
	}
	set("specversion", e.SpecVersion())
	set("id", e.ID())
	set("source", e.Source())
	set("type", e.Type())
	set("subject", e.Subject())
	set("dataschema", e.DataSchema())
	if t := e.Time(); !t.IsZero() {
		set("time", t.UTC().Format(time.RFC3339Nano))
	}
	if ct := e.DataContentType(); ct != "" {
		h[HeaderContentType] = []string{ct}
	}
	for name, v := range exts {
		s, err := types.Format(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: extension %s: %w", ErrInvalid, name, err)
		}
		setExt(name, s) // an extension keeps an empty value
	}
	return h, e.Data(), nil
}

// headerValueOK reports whether v can be a NATS header value as it is: valid UTF-8 without
// control characters (CR and LF would end the header line).
func headerValueOK(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(v)
}

// extensions returns e's extensions without copying them (Event.Extensions copies the map on
// every call); the caller must not change the map.
func extensions(e Event) map[string]any {
	switch c := e.Context.(type) {
	case *ce.EventContextV1:
		return c.Extensions
	case nil:
		return nil
	default:
		return e.Extensions()
	}
}

// EncodeStructured returns the NATS headers and body of e in structured content mode.
func EncodeStructured(e Event) (nats.Header, []byte, error) {
	if err := e.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nats.Header{HeaderContentType: []string{ContentTypeStructured}}, body, nil
}

// IsStructured reports whether a message with these headers is in structured content mode: its
// content-type says so, or (as the official SDK's NATS binding decides) it has no
// ce-specversion header and no content-type.
func IsStructured(h nats.Header) bool {
	ct, hasCT := headerCI(h, HeaderContentType)
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), ContentTypeStructured) {
		return true
	}
	_, binary := headerCI(h, HeaderPrefix+"specversion")
	return !binary && !hasCT
}

// Decode reads a CloudEvent from a NATS message in either content mode. Header names are matched
// case-insensitively; values are percent-decoded. It returns an error wrapping ErrInvalid for a
// message that is not a valid CloudEvents 1.0 event.
func Decode(h nats.Header, body []byte) (Event, error) {
	if IsStructured(h) {
		e := ce.New()
		if !utf8.Valid(body) {
			return e, fmt.Errorf("%w: structured event is not UTF-8 JSON", ErrInvalid)
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return e, fmt.Errorf("%w: structured event: %w", ErrInvalid, err)
		}
		// Normalise through the setters, as the binary path does (they trim surrounding space).
		e.SetID(e.ID())
		e.SetType(e.Type())
		e.SetSource(e.Source())
		if e.Subject() != "" {
			e.SetSubject(e.Subject())
		}
		if err := e.Validate(); err != nil {
			return e, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return e, nil
	}
	e := ce.New(ce.CloudEventsVersionV1)
	var sawSpec bool
	enc, _ := headerCI(h, HeaderEncoding)
	raw := enc == EncodingRaw
	for k, vs := range h {
		if len(vs) == 0 || len(k) <= len(HeaderPrefix) || !strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			continue
		}
		name := strings.ToLower(k[len(HeaderPrefix):])
		v, err := headerValue(vs[0], raw)
		if err != nil {
			return e, fmt.Errorf("%w: header %s: %w", ErrInvalid, k, err)
		}
		switch name {
		case "specversion":
			if v != ce.CloudEventsVersionV1 {
				return e, fmt.Errorf("%w: specversion %q not supported (want 1.0)", ErrInvalid, v)
			}
			sawSpec = true
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "dataschema":
			e.SetDataSchema(v)
		case "time":
			t, err := types.ParseTime(v)
			if err != nil {
				return e, fmt.Errorf("%w: time %q: %w", ErrInvalid, v, err)
			}
			e.SetTime(t)
		case "datacontenttype": // tolerated from producers that send it as a ce- header
			e.SetDataContentType(v)
		default:
			if !ce.IsExtensionNameValid(name) {
				return e, fmt.Errorf("%w: extension name %q", ErrInvalid, name)
			}
			e.SetExtension(name, v)
		}
	}
	if !sawSpec {
		return e, fmt.Errorf("%w: no ce-specversion header (not a CloudEvents message?)", ErrInvalid)
	}
	if ct, ok := headerCI(h, HeaderContentType); ok {
		e.SetDataContentType(ct)
	}
	if len(body) > 0 {
		e.DataEncoded = body
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return e, nil
}

func headerCI(h nats.Header, name string) (string, bool) {
	if vs, ok := h[name]; ok && len(vs) > 0 {
		return vs[0], true
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0], true
		}
	}
	return "", false
}

// headerValue reads a ce- header value: as it is when the message says its values are raw
// (HeaderEncoding), else as earlier omnibus versions wrote them — percent-decoded — unless it is
// not a valid percent-encoding, which a producer that does not encode (the official SDK) sends
// as it is.
func headerValue(v string, raw bool) (string, error) {
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("header value is not UTF-8")
	}
	if raw || !strings.Contains(v, "%") {
		return v, nil
	}
	if d, err := percentDecode(v); err == nil {
		return d, nil
	}
	return v, nil
}

const hexDigits = "0123456789ABCDEF"

// percentEncode encodes a header value as the CloudEvents HTTP binding (§3.1.3.2) prescribes:
// printable ASCII except space, '"' and '%' stays, every other byte of the UTF-8 form becomes %XX.
func percentEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !headerSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if headerSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func headerSafe(c byte) bool { return c > 0x20 && c < 0x7f && c != '"' && c != '%' }

func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("header value is not UTF-8")
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated percent escape in %q", s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("bad percent escape %q", s[i:i+3])
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("percent-decoded value is not UTF-8")
	}
	return string(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
