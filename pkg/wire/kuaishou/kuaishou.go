// Package kuaishou is the wire of the Kuaishou open platform (快手开放平台) webhook, shared by the
// kuaishou connector and its sandbox simulator: the kwaisign signature (lower-case hex
// MD5(raw body + app secret)), the acknowledgement ({"result":1}, without which Kuaishou
// retries) and the event envelope.
//
// Sources: open.kuaishou.com/platformDocs/openAbility/webHook/accessGuide (kwaisign, the test
// event, 3 retries at 5 s) [doc]; a mini-program SDK (re-sent up to 16 times until
// {"result":1}, deduplicated on message_id) [doc]. The hex case of kwaisign and the envelope's
// field names beyond event are [unconfirmed]: Envelope reads both the developer site's taskId
// and the SDK's message_id. Kuaishou documents no private-message event or send API: the
// message payload the connector maps is its own assumption (see services/kuaishou/message.go).
package kuaishou

import (
	"crypto/md5" //nolint:gosec // kwaisign is MD5; it is the vendor's protocol
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/wire/internal/jsonfield"
)

// SignHeader carries Sign(appSecret, body).
const SignHeader = "kwaisign"

// Sign returns kwaisign of body: lower-case hex MD5(body + appSecret).
func Sign(appSecret string, body []byte) string {
	h := md5.New() //nolint:gosec // the vendor's algorithm
	h.Write(body)
	h.Write([]byte(appSecret))
	return hex.EncodeToString(h.Sum(nil))
}

// Verify reports whether signature is Sign(appSecret, body), in constant time and ignoring the
// signature's case (the documented case is not confirmed).
func Verify(appSecret string, body []byte, signature string) bool {
	want := Sign(appSecret, body)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) == 1
}

// Ack is the answer that stops Kuaishou's retries.
type Ack struct {
	Result int `json:"result"`
}

// Acknowledged is the Ack of a handled event.
var Acknowledged = Ack{Result: 1}

// Documented events.
const (
	EventTest = "TEST" // sent when the webhook URL is saved
)

// Envelope is a webhook event. Data is the event's payload, an object or a JSON-encoded string.
type Envelope struct {
	Event     string          `json:"event"`
	TaskID    string          `json:"taskId,omitempty"`
	MessageID string          `json:"message_id,omitempty"`
	AppKey    string          `json:"app_key,omitempty"`
	Timestamp int64           `json:"timestamp,omitempty"` // milliseconds
	Data      json.RawMessage `json:"data,omitempty"`
}

// ID is the event's delivery id, the same on every retry: taskId, else message_id.
func (e Envelope) ID() string {
	if e.TaskID != "" {
		return e.TaskID
	}
	return e.MessageID
}

// ErrEvent is wrapped by ParseEnvelope for a body that is not an event.
var ErrEvent = errors.New("kuaishou: not a webhook event")

// ParseEnvelope decodes a webhook body; event is required.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrEvent, err)
	}
	if e.Event == "" {
		return Envelope{}, fmt.Errorf("%w: no event name", ErrEvent)
	}
	return e, nil
}

// DataJSON returns the payload as JSON: the decoded string when it was JSON-encoded, the
// object itself otherwise.
func (e Envelope) DataJSON() ([]byte, error) {
	d, err := jsonfield.Unwrap(e.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: data: %w", ErrEvent, err)
	}
	return d, nil
}
