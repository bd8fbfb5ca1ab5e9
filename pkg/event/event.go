package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Event is the CloudEvents SDK event; omnibus passes it by value everywhere.
type Event = ce.Event

// Extension attribute names used by omnibus.
const (
	ExtTraceParent   = "traceparent"   // W3C trace context of the event's creation (distributed-tracing extension)
	ExtTraceState    = "tracestate"    // W3C tracestate of the creation context
	ExtCorrelationID = "correlationid" // ties a .completed/.failed to its .requested
	ExtPartitionKey  = "partitionkey"  // the identity the event must stay ordered behind
)

// ContentTypeJSON is the datacontenttype of every omnibus event.
const ContentTypeJSON = "application/json"

// ErrInvalid is wrapped by every error New and the codec return for an event that breaks the spec.
var ErrInvalid = errors.New("invalid cloudevent")

// Option sets an optional attribute in New.
type Option func(*ce.Event)

// WithID overrides the generated id. Connectors pass the vendor's message id (prefixed with the
// channel) so that a vendor retry produces the same event id and JetStream drops the duplicate.
func WithID(id string) Option { return func(e *ce.Event) { e.SetID(id) } }

// WithSubject sets the CloudEvents subject: the conversation or customer key where known.
func WithSubject(s string) Option { return func(e *ce.Event) { e.SetSubject(s) } }

// WithTime overrides the event time (default: now, UTC).
func WithTime(t time.Time) Option { return func(e *ce.Event) { e.SetTime(t.UTC()) } }

// WithCorrelationID sets the correlationid extension.
func WithCorrelationID(id string) Option {
	return func(e *ce.Event) { setExt(e, ExtCorrelationID, id) }
}

// WithPartitionKey sets the partitionkey extension (e.g. "phone:+8613800138000").
func WithPartitionKey(k string) Option { return func(e *ce.Event) { setExt(e, ExtPartitionKey, k) } }

// WithDataSchema sets dataschema (pkg/bus fills it from the schema registry when empty).
func WithDataSchema(uri string) Option { return func(e *ce.Event) { e.SetDataSchema(uri) } }

func setExt(e *ce.Event, name, v string) {
	if v == "" {
		return
	}
	e.SetExtension(name, v)
}

// New builds a CloudEvent with a time-ordered UUIDv7 id, the current time, JSON data and the
// given options. data may be a struct, a map, json.RawMessage or []byte holding JSON.
func New(typ, source string, data any, opts ...Option) (Event, error) {
	e := ce.New(ce.CloudEventsVersionV1)
	id, err := uuid.NewV7()
	if err != nil {
		return e, fmt.Errorf("event id: %w", err)
	}
	e.SetID(id.String())
	e.SetType(typ)
	e.SetSource(source)
	e.SetTime(time.Now().UTC())
	var raw []byte
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		if raw, err = json.Marshal(data); err != nil {
			return e, fmt.Errorf("%w: data of %s: %w", ErrInvalid, typ, err)
		}
	}
	if !json.Valid(raw) {
		return e, fmt.Errorf("%w: data of %s is not JSON", ErrInvalid, typ)
	}
	// Set the encoded bytes directly: the SDK's SetData marks []byte as base64, which would put
	// JSON data in data_base64 in structured mode.
	e.SetDataContentType(ContentTypeJSON)
	e.DataEncoded = raw
	for _, o := range opts {
		o(&e)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return e, nil
}

// Ext returns a string extension of e, or "".
func Ext(e Event, name string) string {
	if e.Context == nil {
		return ""
	}
	// GetExtension reads the one value; Extensions() would copy the whole map first.
	v, err := e.Context.GetExtension(name)
	if err != nil || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// CorrelationID returns the correlationid extension, or "".
func CorrelationID(e Event) string { return Ext(e, ExtCorrelationID) }

// PartitionKey returns the partitionkey extension, or "".
func PartitionKey(e Event) string { return Ext(e, ExtPartitionKey) }

// DecodeData unmarshals the event's JSON data into v.
func DecodeData(e Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return fmt.Errorf("%w: data of %s %s: %w", ErrInvalid, e.Type(), e.ID(), err)
	}
	return nil
}
