// Package event is the omnibus CloudEvents envelope: constructors with the omnibus extensions
// (traceparent, tracestate, correlationid, partitionkey) and the CloudEvents NATS protocol binding
// codec used by pkg/bus.
//
// Binary content mode (what omnibus publishes) puts every context attribute in a "ce-<name>" NATS
// header, percent-encoded as the HTTP binding prescribes, "content-type" carries datacontenttype, and
// the message body is the event data. Structured mode ("content-type: application/cloudevents+json",
// the whole event as JSON in the body) is accepted on input. Header names are read case-insensitively.
//
// The codec is written here, on the SDK's event type, because the SDK's own nats_jetstream protocol
// adapter uses the legacy JetStream API, creates streams on its own and never acks or naks.
package event
