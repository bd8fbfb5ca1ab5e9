// Package bus is omnibus's JetStream client: CloudEvents in the NATS protocol binding on the
// omnibus streams (Streams: OMNI_IN, OMNI_OUT, OMNI_TOOL, OMNI_DESK, OMNI_AUDIT, OMNI_DLQ, OMNI_OPS
// and OMNI_REDRIVE; StreamOf maps a subject to its stream), with schema validation on both sides,
// ack-after-effect consumers, an operable dead-letter stream and OpenTelemetry spans and metrics.
//
// The roles are small interfaces — Publisher, Subscriber, StreamAdmin, DeadLetters, Replayer,
// KeyValues, Live — composed into Bus, which Client implements, the way nats.go's jetstream.JetStream
// is composed. A process hands its services a Bus (service.Deps); code below a service depends on
// the one role it uses (pkg/audit, pkg/alert and pkg/resilience on Publisher, a connector's state
// on KeyValues), so a test fakes only that role.
//
// Handlers steer delivery with the error kinds in this package: Permanent, RetryAfter and
// Unavailable. pkg/resilience returns them from vendor calls; the bus imports nothing of omnibus
// but event and schema, so every other package may import it.
//
// Delivery guarantees: a published event is acknowledged by JetStream before Publish returns, and
// carries Nats-Msg-Id = event id, so a retried publish is stored once within the stream's duplicate
// window. A consumed message is acked only after its handler returned nil; a transient error naks
// with backoff; a permanent error (undecodable, schema-invalid, Permanent) or the last
// allowed delivery moves it to OMNI_DLQ with the reason in headers. Nothing is dropped silently:
// if the dead-letter publish fails the message is nak'ed and tried again.
//
// Live (PublishLive, SubscribeLive) is the one exception, and it is kept apart: ephemeral events
// on core NATS under omni.live.>, which no stream stores, delivered at most once — progress shown
// while it happens (an AI suggestion's tokens), always superseded by a durable event.
package bus
