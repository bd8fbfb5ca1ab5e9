// Package audit records every third-party call omnibus makes: one masked record per call,
// published as a CloudEvent omni.audit.call.recorded on omni.audit.<service> (stream OMNI_AUDIT)
// and stored by the audit service.
//
// The resilience pipeline emits the records; connectors do not call this package directly. A
// record names the calling service, the vendor and operation, the outcome, the last HTTP status and
// vendor code, the latency, the number of attempts, the fallback served, the trace and customer ids
// and the request and response bodies — masked by field-name rules and the pii scanner, and capped
// (see Masker).
//
// Delivery: Publisher.Emit never blocks and never waits on the bus. Records go through a bounded
// buffer to background workers that publish them; when the buffer is full, or the bus refuses a
// record after retries, or after Close, the record is written — masked, in full — to the log at
// WARN ("audit record spilled") and counted in omnibus_audit_records_total{result="spilled"}.
// Nothing is dropped silently, and a caller's latency budget never waits for the audit trail.
package audit

import (
	"regexp"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/schemas"
)

// TypeCallRecorded is the CloudEvents type of an audit record.
const TypeCallRecorded = schemas.TypeAuditCallRecorded

// Subject returns the subject a service's records are published on.
func Subject(service string) string { return "omni.audit." + service }

// Outcomes of a call, as recorded (and as the resilience pipeline's metrics label them).
const (
	OutcomeOK           = "ok"            // the vendor answered with success
	OutcomeError        = "error"         // transient failures until the retries or the budget ran out
	OutcomeTimeout      = "timeout"       // the last attempt timed out
	OutcomePermanent    = "permanent"     // the vendor refused the request; retrying cannot help
	OutcomeRateLimited  = "rate_limited"  // the vendor said slow down (429 or its rate-limit code)
	OutcomeCircuitOpen  = "circuit_open"  // not sent: the route's breaker is open
	OutcomeBulkheadFull = "bulkhead_full" // not sent: too many calls in flight on the route
	OutcomeThrottled    = "throttled"     // not sent: the route's own rate limit had no permit in time
	OutcomeCanceled     = "canceled"      // the caller gave up
)

// Fallbacks a failed call may have served.
const (
	FallbackStaleCache = "stale_cache" // an expired cached value
	FallbackManual     = "manual"      // a manual path (e.g. the vendor's web page) for the agent
)

// Record is the data of an omni.audit.call.recorded event.
type Record struct {
	At            time.Time `json:"at"`
	Service       string    `json:"service"`
	Vendor        string    `json:"vendor"`
	Op            string    `json:"op"`
	Outcome       string    `json:"outcome"`
	Status        int       `json:"status,omitempty"`
	Code          string    `json:"code,omitempty"`
	Error         string    `json:"error,omitempty"`
	LatencyMS     float64   `json:"latency_ms"`
	Attempts      int       `json:"attempts"`
	Idempotent    bool      `json:"idempotent"`
	Fallback      string    `json:"fallback,omitempty"`
	TraceID       string    `json:"trace_id,omitempty"`
	CustomerID    string    `json:"customer_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Request       *Body     `json:"request,omitempty"`
	Response      *Body     `json:"response,omitempty"`
}

// Body is a masked, capped request or response body.
type Body struct {
	ContentType string `json:"content_type,omitempty"`
	Text        string `json:"text"`
	Bytes       int    `json:"bytes"` // size of the original body
	Truncated   bool   `json:"truncated,omitempty"`
}

// Entry is a call as the pipeline saw it, before masking: Record with Request and Response left
// nil, and the raw bodies. Emitters mask it off the caller's path.
type Entry struct {
	Record
	RequestBody, ResponseBody []byte
	RequestType, ResponseType string
	// SpanContext is the call's span; the record's event carries it as traceparent.
	SpanContext trace.SpanContext
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ValidName reports whether s can be a subject token (service, vendor, op): ^[a-z][a-z0-9_]*$.
func ValidName(s string) bool { return len(s) <= 64 && nameRE.MatchString(s) }

// Mask turns an entry into its record with masked bodies and error text.
func (m *Masker) Mask(e Entry) Record {
	r := e.Record
	r.Error = m.Text(r.Error)
	r.Code = m.Text(r.Code)
	if e.RequestBody != nil {
		r.Request = m.body(e.RequestBody, e.RequestType)
	}
	if e.ResponseBody != nil {
		r.Response = m.body(e.ResponseBody, e.ResponseType)
	}
	return r
}

func (m *Masker) body(b []byte, ct string) *Body {
	text, size, trunc := m.Body(b)
	return &Body{ContentType: ct, Text: text, Bytes: size, Truncated: trunc}
}
