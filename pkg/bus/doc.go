// Package bus is omnibus's JetStream client: CloudEvents in the NATS protocol binding on the
// omnibus streams (Streams: OMNI_IN, OMNI_OUT, OMNI_TOOL, OMNI_DESK, OMNI_AUDIT, OMNI_DLQ, OMNI_OPS
// and OMNI_REDRIVE; StreamOf maps a subject to its stream), with schema validation on both sides,
// ack-after-effect consumers, an operable dead-letter stream and OpenTelemetry spans and metrics.
//
// The roles are small interfaces — Publisher, Subscriber, StreamAdmin, DeadLetters — and Client
// implements all of them, the way nats.go's jetstream.JetStream is composed. Services depend on the
// role they use.
//
// Delivery guarantees: a published event is acknowledged by JetStream before Publish returns, and
// carries Nats-Msg-Id = event id, so a retried publish is stored once within the stream's duplicate
// window. A consumed message is acked only after its handler returned nil; a transient error naks
// with backoff; a permanent error (undecodable, schema-invalid, Permanent) or the last
// allowed delivery moves it to OMNI_DLQ with the reason in headers. Nothing is dropped silently:
// if the dead-letter publish fails the message is nak'ed and tried again.
package bus
