package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// The outbox batch encoding: what one transaction writes to outbox_batches.events (migration
// 00006 describes it, and its outbox_events function decodes it in SQL):
//
//	batch := version(1 byte, = 2) event*
//	event := str(id) str(subject) str(type) str(ce_subject) str(partitionkey) str(correlationid)
//	         str(traceparent) int64(time, µs since the Unix epoch) str(data)
//	str   := uint32(byte count) bytes
//
// Integers are big-endian; an empty string means the attribute is absent. traceparent is the
// W3C trace context the event continues (the consumer span of the event that caused it), so the
// relay publishes it in that trace; version 1 (before migration 00009) had no traceparent and
// is still read.

const (
	outboxVersion   = 2
	outboxVersionV1 = 1
)

// outboxEvent is one event of an outbox batch.
type outboxEvent struct {
	id, subject, typ, ceSubject, partitionKey, corr string
	trace                                           string    // W3C traceparent, "" for none
	at                                              time.Time // microseconds, UTC
	data                                            []byte    // JSON
}

// encodeOutbox encodes rows as one batch, marshalling their data; traces maps the id of the
// event a row was caused by (its correlation id) to the trace context the row continues.
func encodeOutbox(rows []outboxRow, traces map[string]string) ([]byte, error) {
	b := make([]byte, 1, 1+len(rows)*1024)
	b[0] = outboxVersion
	for _, r := range rows {
		data, err := json.Marshal(r.data)
		if err != nil {
			return nil, fmt.Errorf("outbox event %s: %w", r.id, err)
		}
		b = appendOutboxEvent(b, outboxEvent{id: r.id, subject: r.subject, typ: r.typ, ceSubject: r.ceSubject,
			partitionKey: r.partitionKey, corr: r.corr, trace: traces[r.corr], at: r.at, data: data})
	}
	return b, nil
}

// encodeOutboxEvents encodes decoded events again (what a flush leaves in a batch).
func encodeOutboxEvents(evs []outboxEvent) ([]byte, error) {
	if len(evs) == 0 {
		return nil, errors.New("an outbox batch holds at least one event")
	}
	b := []byte{outboxVersion}
	for _, e := range evs {
		b = appendOutboxEvent(b, e)
	}
	return b, nil
}

func appendOutboxEvent(b []byte, e outboxEvent) []byte {
	for _, s := range [...]string{e.id, e.subject, e.typ, e.ceSubject, e.partitionKey, e.corr, e.trace} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.at.UnixMicro()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.data)))
	return append(b, e.data...)
}

// errOutboxBatch is a batch that does not decode: written by something else than the engine.
var errOutboxBatch = errors.New("malformed outbox batch")

// decodeOutbox decodes a batch. The events' data are slices of b; their strings share no memory
// with it.
func decodeOutbox(b []byte) ([]outboxEvent, error) {
	if len(b) == 0 || (b[0] != outboxVersion && b[0] != outboxVersionV1) {
		return nil, fmt.Errorf("%w: unknown encoding version", errOutboxBatch)
	}
	v1 := b[0] == outboxVersionV1
	// One string holds every field's bytes: a conversion per batch, not per field.
	all := string(b)
	pos := 1
	span := func(what string) (from, to int, err error) {
		if len(b)-pos < 4 {
			return 0, 0, fmt.Errorf("%w: %s cut short at byte %d", errOutboxBatch, what, pos)
		}
		n := binary.BigEndian.Uint32(b[pos:])
		pos += 4
		if uint64(n) > uint64(len(b)-pos) {
			return 0, 0, fmt.Errorf("%w: %s of %d bytes at byte %d runs past the end", errOutboxBatch, what, n, pos)
		}
		from, pos = pos, pos+int(n)
		return from, pos, nil
	}
	field := func(what string) (string, error) {
		from, to, err := span(what)
		return all[from:to], err
	}
	var out []outboxEvent
	for pos < len(all) {
		var e outboxEvent
		var err error
		for _, f := range [...]struct {
			name string
			to   *string
		}{{"id", &e.id}, {"subject", &e.subject}, {"type", &e.typ}, {"ce_subject", &e.ceSubject},
			{"partitionkey", &e.partitionKey}, {"correlationid", &e.corr}, {"traceparent", &e.trace}} {
			if v1 && f.to == &e.trace {
				break
			}
			if *f.to, err = field(f.name); err != nil {
				return nil, err
			}
		}
		if len(all)-pos < 8 {
			return nil, fmt.Errorf("%w: time cut short at byte %d", errOutboxBatch, pos)
		}
		e.at = time.UnixMicro(int64(binary.BigEndian.Uint64(b[pos:]))).UTC()
		pos += 8
		from, to, err := span("data")
		if err != nil {
			return nil, err
		}
		e.data = b[from:to:to]
		if e.id == "" || e.subject == "" || e.typ == "" {
			return nil, fmt.Errorf("%w: event %d has no id, subject or type", errOutboxBatch, len(out)+1)
		}
		if !utf8.ValidString(e.id) || !utf8.ValidString(e.subject) || !utf8.ValidString(e.typ) {
			return nil, fmt.Errorf("%w: event %d: id, subject or type is not UTF-8", errOutboxBatch, len(out)+1)
		}
		out = append(out, e)
	}
	return out, nil
}

// cloudEvent is the CloudEvent of an outbox event. It is event.New without what the outbox does
// not need: a fresh id (the event's is kept) and a second check that data is JSON (the schema
// check at publish parses it).
func (o outboxEvent) cloudEvent() (event.Event, error) {
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(o.id)
	e.SetType(o.typ)
	e.SetSource(Source)
	e.SetDataContentType(event.ContentTypeJSON)
	e.DataEncoded = o.data
	event.WithTime(o.at)(&e)
	event.WithPartitionKey(o.partitionKey)(&e)
	event.WithCorrelationID(o.corr)(&e)
	if o.ceSubject != "" {
		e.SetSubject(o.ceSubject)
	}
	if o.trace != "" {
		e.SetExtension(event.ExtTraceParent, o.trace)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %w", event.ErrInvalid, err)
	}
	return e, nil
}
