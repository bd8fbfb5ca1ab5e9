package webchat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// The widget protocol: JSON text frames over the WebSocket at /webchat/ws. The client's first
// frame is hello; the server answers welcome and then streams the visitor's log from the
// resume point. See README.md for every frame.

// Client frame types.
const (
	FrameHello   = "hello"   // {visitor?, token?, since?, identity?}: first frame; no visitor = new visitor
	FrameMessage = "message" // {cid, text, phone?, email?}: a visitor message
	FrameContact = "contact" // {cid, phone?, email?}: the visitor leaves a phone or email
	FrameReceipt = "receipt" // {seq, status: delivered|read}: agent messages up to seq reached the visitor
)

// Server frame types.
const (
	FrameWelcome = "welcome" // {visitor, token, title?, greeting?, reset?}
	FrameAck     = "ack"     // {cid, seq, phone?, email?}: the frame cid is stored on the bus
	FrameMsg     = "msg"     // {seq, from: visitor|agent, cid?, message, at}: one entry of the visitor's log
	FrameError   = "error"   // {cid?, code, reason, retry_after_ms?}
)

// Error codes of error frames and close reasons.
const (
	CodeInvalid     = "invalid"      // the frame is wrong; do not resend it unchanged
	CodeRateLimited = "rate_limited" // resend after retry_after_ms
	CodeUnavailable = "unavailable"  // the bus did not store it; resend later (same cid)
)

// Close codes (RFC 6455 private range 4000-4999) besides the standard ones: 1001 going away
// (connector shutting down: reconnect), 1008 policy (bad hello), 1009 frame too big.
const (
	CloseUnauthorized = 4401 // visitor token rejected: forget the stored id, reconnect as a new visitor
	CloseIdentity     = 4403 // host-signed identity rejected: reconnect without it
	CloseTooMany      = 4429 // too many open sockets for this visitor, or new visitors from this address
)

// ErrFrame is wrapped by every error about a client frame the connector will not accept.
var ErrFrame = errors.New("invalid frame")

// Identity is one customer identity, as in the events' from/identities.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// ClientFrame is a frame sent by the widget. Which fields are set depends on Type.
type ClientFrame struct {
	Type string `json:"type"`
	// hello
	Visitor  string        `json:"visitor,omitempty"`
	Token    string        `json:"token,omitempty"`
	Since    uint64        `json:"since,omitempty"`
	Identity *HostIdentity `json:"identity,omitempty"`
	// message, contact
	CID   string `json:"cid,omitempty"`
	Text  string `json:"text,omitempty"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
	// receipt
	Seq    uint64 `json:"seq,omitempty"`
	Status string `json:"status,omitempty"`
}

// ServerFrame is a frame sent to the widget.
type ServerFrame struct {
	Type string `json:"type"`
	// welcome
	Visitor  string `json:"visitor,omitempty"`
	Token    string `json:"token,omitempty"`
	Title    string `json:"title,omitempty"`
	Greeting string `json:"greeting,omitempty"`
	// Reset tells the widget that its since was beyond the log (the log was recreated): it
	// forgets the seqs it has and takes the history that follows.
	Reset bool `json:"reset,omitempty"`
	// ack, msg, error
	CID     string          `json:"cid,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	From    string          `json:"from,omitempty"`
	Message json.RawMessage `json:"message,omitempty"`
	At      *time.Time      `json:"at,omitempty"`
	Phone   string          `json:"phone,omitempty"`
	Email   string          `json:"email,omitempty"`
	// error
	Code         string `json:"code,omitempty"`
	Reason       string `json:"reason,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// Limits of client frames beyond the connector's configurable caps.
const (
	maxCIDLen   = 64
	maxPhoneLen = 32
	maxEmailLen = 254
	maxTextCap  = 10000 // the message schema's limit
)

// ParseClientFrame decodes and checks one client frame. maxText caps the text of a message in
// characters. Errors wrap ErrFrame with the reason, which is safe to show to the visitor.
func ParseClientFrame(b []byte, maxText int) (ClientFrame, error) {
	var f ClientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: not a JSON frame object: %s", ErrFrame, jsonReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return ClientFrame{}, fmt.Errorf("%w: data after the JSON object", ErrFrame)
	}
	if err := f.check(maxText); err != nil {
		return ClientFrame{}, err
	}
	return f, nil
}

func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	}
	// DisallowUnknownFields: `json: unknown field "x"`.
	return strings.TrimPrefix(err.Error(), "json: ")
}

func (f *ClientFrame) check(maxText int) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrFrame}, a...)...)
	}
	switch f.Type {
	case FrameHello:
		if (f.Visitor == "") != (f.Token == "") {
			return bad("hello needs both visitor and token, or neither (a new visitor)")
		}
		if f.Visitor != "" && !ValidVisitorID(f.Visitor) {
			return bad("visitor must look like v_0123456789abcdef")
		}
		if f.CID != "" || f.Text != "" || f.Phone != "" || f.Email != "" || f.Seq != 0 || f.Status != "" {
			return bad("hello carries only visitor, token, since and identity")
		}
	case FrameMessage, FrameContact:
		if !validCID(f.CID) {
			return bad("cid must be 1-%d characters of A-Z a-z 0-9 _ -", maxCIDLen)
		}
		if f.Visitor != "" || f.Token != "" || f.Since != 0 || f.Identity != nil || f.Seq != 0 || f.Status != "" {
			return bad("%s carries only cid, text, phone and email", f.Type)
		}
		if len(f.Phone) > maxPhoneLen {
			return bad("phone longer than %d characters", maxPhoneLen)
		}
		if len(f.Email) > maxEmailLen {
			return bad("email longer than %d characters", maxEmailLen)
		}
		if f.Type == FrameContact {
			if f.Text != "" {
				return bad("contact carries no text")
			}
			if f.Phone == "" && f.Email == "" {
				return bad("contact needs a phone or an email")
			}
			return nil
		}
		f.Text = strings.TrimRightFunc(f.Text, unicode.IsSpace)
		f.Text = strings.TrimLeft(f.Text, "\r\n")
		if strings.TrimSpace(f.Text) == "" {
			return bad("message text is empty")
		}
		if n := utf8.RuneCountInString(f.Text); n > maxText {
			return bad("message text has %d characters, the limit is %d", n, maxText)
		}
		if !utf8.ValidString(f.Text) || strings.ContainsFunc(f.Text, forbiddenRune) {
			return bad("message text contains control characters")
		}
	case FrameReceipt:
		if f.Seq == 0 {
			return bad("receipt needs seq > 0")
		}
		if f.Status != "delivered" && f.Status != "read" {
			return bad("receipt status must be delivered or read")
		}
		if f.Visitor != "" || f.Token != "" || f.Since != 0 || f.Identity != nil || f.CID != "" || f.Text != "" || f.Phone != "" || f.Email != "" {
			return bad("receipt carries only seq and status")
		}
	case "":
		return bad("type is missing")
	default:
		return bad("unknown type %q (hello, message, contact, receipt)", f.Type)
	}
	return nil
}

// forbiddenRune rejects control characters other than tab and newlines, and U+FFFD (what
// invalid UTF-8 decodes to).
func forbiddenRune(r rune) bool {
	return r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t')
}

func validCID(s string) bool {
	if s == "" || len(s) > maxCIDLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ErrContact is wrapped when a phone number or email address is not valid.
var ErrContact = errors.New("invalid contact")

// NormalizePhone validates raw as a phone number (one written without a country code is read in
// region, e.g. "CN") and returns it in E.164, "+8613800138000".
func NormalizePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxPhoneLen {
		return "", fmt.Errorf("%w: phone must be 1-%d characters", ErrContact, maxPhoneLen)
	}
	// "0086 138..." and "86 138..." are common ways of writing +86 in China.
	if strings.HasPrefix(raw, "00") {
		raw = "+" + raw[2:]
	}
	n, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a phone number", ErrContact, raw)
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", fmt.Errorf("%w: %q is not a valid phone number", ErrContact, raw)
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// NormalizeEmail validates raw as a bare email address (no display name) and returns it
// trimmed and lower-cased, as the unifier stores it.
func NormalizeEmail(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxEmailLen {
		return "", fmt.Errorf("%w: email must be 1-%d characters", ErrContact, maxEmailLen)
	}
	a, err := mail.ParseAddress(raw)
	if err != nil || a.Name != "" || a.Address != raw {
		return "", fmt.Errorf("%w: %q is not an email address", ErrContact, raw)
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") || strings.ContainsAny(raw, " \t\"") {
		return "", fmt.Errorf("%w: %q is not an email address", ErrContact, raw)
	}
	return strings.ToLower(a.Address), nil
}

// contactIdentities validates the phone and email of a message or contact frame.
func contactIdentities(f ClientFrame, region string) ([]Identity, error) {
	var out []Identity
	if f.Phone != "" {
		p, err := NormalizePhone(f.Phone, region)
		if err != nil {
			return nil, err
		}
		out = append(out, Identity{"phone", p})
	}
	if f.Email != "" {
		e, err := NormalizeEmail(f.Email)
		if err != nil {
			return nil, err
		}
		out = append(out, Identity{"email", e})
	}
	return out, nil
}
