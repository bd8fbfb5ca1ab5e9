package bus_test

// Benchmarks of pkg/bus against raw nats.go jetstream on the same embedded server, with the same
// messages on the wire. Each sub-benchmark invocation gets a fresh server (bustest.New), set up
// with the timer stopped. Building the CloudEvents is the caller's work and happens before the
// timer starts; for raw, encoding happens there too (raw is the floor: what JetStream itself
// costs). Everything pkg/bus does per message (schema validation, dataschema, spans, metrics,
// encoding, header building, decoding on consume) is timed.
//
//	go test -run '^$' -bench 'Publish|Consume' -benchtime 20000x -count 3 ./bus/

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

const (
	benchBatch        = 256
	benchAsyncPending = 4096 // the bus default, used for the raw jetstream handle too
	benchDurable      = "bench"
)

var benchLog = slog.New(slog.DiscardHandler)

// benchBundle starts a fresh embedded server with the omnibus streams, timer stopped.
func benchBundle(b *testing.B) *bustest.Bundle {
	b.Helper()
	b.StopTimer()
	return bustest.New(b, bus.WithLogger(benchLog))
}

// rawJS is a plain jetstream handle on the bundle's connection, configured like the bus's.
func rawJS(b *testing.B, bb *bustest.Bundle) jetstream.JetStream {
	b.Helper()
	js, err := jetstream.New(bb.Conn, jetstream.WithPublishAsyncMaxPending(benchAsyncPending))
	if err != nil {
		b.Fatal(err)
	}
	return js
}

// benchEvents builds n distinct schema-valid events (distinct ids, so nothing is deduplicated).
func benchEvents(b *testing.B, n int) []event.Event {
	b.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = received(b, i)
	}
	return evs
}

// rawMsgs encodes n events exactly as bus.Publish puts them on the wire with the default (noop)
// tracer: binary mode, dataschema filled from the registry, Nats-Msg-Id = event id, on the
// partitioned inbound subject.
func rawMsgs(b *testing.B, bb *bustest.Bundle, n int) []*nats.Msg {
	b.Helper()
	url := bb.Client.Schemas().SchemaURL(typeReceived)
	if url == "" {
		b.Fatalf("no schema URL for %s", typeReceived)
	}
	msgs := make([]*nats.Msg, n)
	for i, e := range benchEvents(b, n) {
		e.SetDataSchema(url)
		h, body, err := event.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		h.Set(jetstream.MsgIDHeader, e.ID())
		h.Set(bus.HeaderSchema, bb.Client.Schemas().Fingerprint()) // as pkg/bus producers stamp it
		key := event.PartitionKey(e)
		if key == "" {
			key = e.ID()
		}
		msgs[i] = &nats.Msg{Subject: bus.PartitionedSubject(subjIn, key), Header: h, Data: body}
	}
	return msgs
}

func startTimer(b *testing.B) {
	b.ReportAllocs()
	b.ResetTimer()
	b.StartTimer()
}

func reportRate(b *testing.B) {
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "msgs/s")
	}
}

func waitFutures(ctx context.Context, b *testing.B, futs []jetstream.PubAckFuture) {
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
}

// BenchmarkPublishSync: one publish at a time, each waiting for its JetStream ack.
func BenchmarkPublishSync(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		bb := benchBundle(b)
		js := rawJS(b, bb)
		msgs := rawMsgs(b, bb, b.N)
		ctx := context.Background()
		startTimer(b)
		for _, m := range msgs {
			if _, err := js.PublishMsg(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("bus", func(b *testing.B) {
		bb := benchBundle(b)
		evs := benchEvents(b, b.N)
		ctx := context.Background()
		startTimer(b)
		for _, e := range evs {
			if err := bb.Client.Publish(ctx, subjIn, e); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkPublishAsyncBatch: batches of 256 published asynchronously, waiting for every ack of a
// batch before the next.
func BenchmarkPublishAsyncBatch(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		bb := benchBundle(b)
		publishRawBatches(b, rawJS(b, bb), rawMsgs(b, bb, b.N), 5*time.Second)
	})
	b.Run("bus", func(b *testing.B) {
		bb := benchBundle(b)
		publishBatches(b, benchBatches(b), bb.Client.PublishBatch)
	})
}

// BenchmarkPublishFsynced: the same batches of 256 on a server that fsyncs every write
// (sync_interval: always, the all-in-one's default): raw async publishes, PublishBatch (one
// fsync per message) and PublishAtomic (one per batch).
func BenchmarkPublishFsynced(b *testing.B) {
	b.Run("raw-async", func(b *testing.B) {
		b.StopTimer()
		bb := bustest.NewSynced(b, "always", bus.WithLogger(benchLog))
		publishRawBatches(b, rawJS(b, bb), rawMsgs(b, bb, b.N), 30*time.Second)
	})
	for _, mode := range []string{"bus-batch", "bus-atomic"} {
		b.Run(mode, func(b *testing.B) {
			b.StopTimer()
			bb := bustest.NewSynced(b, "always", bus.WithLogger(benchLog), bus.WithDefaultTimeout(30*time.Second))
			publish := bb.Client.PublishBatch
			if mode == "bus-atomic" {
				publish = bb.Client.PublishAtomic
			}
			publishBatches(b, benchBatches(b), publish)
		})
	}
}

// benchBatches builds b.N events in batches of benchBatch (untimed).
func benchBatches(b *testing.B) [][]bus.Outgoing {
	b.Helper()
	evs := benchEvents(b, b.N)
	var out [][]bus.Outgoing
	for lo := 0; lo < len(evs); lo += benchBatch {
		batch := make([]bus.Outgoing, 0, benchBatch)
		for _, e := range evs[lo:min(lo+benchBatch, len(evs))] {
			batch = append(batch, bus.Outgoing{Subject: subjIn, Event: e})
		}
		out = append(out, batch)
	}
	return out
}

// publishBatches times publishing every batch with publish, one after the other.
func publishBatches(b *testing.B, batches [][]bus.Outgoing, publish func(context.Context, []bus.Outgoing) error) {
	b.Helper()
	ctx := context.Background()
	startTimer(b)
	for _, batch := range batches {
		if err := publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// publishRawBatches times publishing msgs asynchronously in batches of benchBatch, waiting for
// every ack of a batch (within timeout, as PublishBatch's deadline) before the next.
func publishRawBatches(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg, timeout time.Duration) {
	b.Helper()
	futs := make([]jetstream.PubAckFuture, 0, benchBatch)
	startTimer(b)
	for lo := 0; lo < len(msgs); lo += benchBatch {
		futs = futs[:0]
		for _, m := range msgs[lo:min(lo+benchBatch, len(msgs))] {
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		waitFutures(ctx, b, futs)
		cancel()
	}
	reportRate(b)
}

// preload stores n messages on OMNI_IN (untimed), in the exact bus wire format.
func preload(b *testing.B, bb *bustest.Bundle, n int) {
	b.Helper()
	js := rawJS(b, bb)
	msgs := rawMsgs(b, bb, n)
	futs := make([]jetstream.PubAckFuture, 0, 1024)
	for lo := 0; lo < len(msgs); lo += cap(futs) {
		futs = futs[:0]
		for _, m := range msgs[lo:min(lo+cap(futs), len(msgs))] {
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		waitFutures(ctx, b, futs)
		cancel()
	}
	if got := bb.StoredCount(b, bus.StreamIn, "omni.in.>"); got != uint64(n) {
		b.Fatalf("preload: %d messages stored, want %d", got, n)
	}
}

// counter signals done once n messages were handled.
type counter struct {
	n    int64
	seen atomic.Int64
	done chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

func (c *counter) inc() {
	if c.seen.Add(1) == c.n {
		close(c.done)
	}
}

func (c *counter) wait(b *testing.B) {
	b.Helper()
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("consumed %d of %d messages before timing out", c.seen.Load(), c.n)
	}
}

// assertAllAcked checks (untimed) that the durable consumer's ack floor reached every message.
func assertAllAcked(b *testing.B, bb *bustest.Bundle, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := bb.Client.JetStream().Consumer(ctx, bus.StreamIn, benchDurable)
	if err != nil {
		b.Fatal(err)
	}
	var last string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err == nil && info.AckFloor.Stream == uint64(n) && info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("ack floor %d, ack pending %d, pending %d", info.AckFloor.Stream, info.NumAckPending, info.NumPending)
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every message was acked: %s (want ack floor %d)", last, n)
		}
	}
}

// BenchmarkConsume: b.N messages are stored first (untimed); the timer covers creating the
// durable consumer and receiving, (for bus) decoding/validating, handling and acking all of them.
func BenchmarkConsume(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		bb := benchBundle(b)
		preload(b, bb, b.N)
		js := rawJS(b, bb)
		cnt := newCounter(b.N)
		ctx := context.Background()
		startTimer(b)
		cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamIn, jetstream.ConsumerConfig{
			Durable: benchDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
			MaxDeliver: -1, MaxAckPending: 1024, // what bus.Subscribe sets by default
		})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			if err := m.Ack(); err != nil {
				b.Error(err)
			}
			cnt.inc()
		}, jetstream.PullMaxMessages(256))
		if err != nil {
			b.Fatal(err)
		}
		cnt.wait(b)
		reportRate(b)
		cc.Stop()
		<-cc.Closed()
		assertAllAcked(b, bb, b.N)
	})
	b.Run("bus", func(b *testing.B) {
		bb := benchBundle(b)
		preload(b, bb, b.N)
		cnt := newCounter(b.N)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		startTimer(b)
		sub, err := bb.Client.Subscribe(ctx, bus.ConsumerConfig{Service: benchDurable, Stream: bus.StreamIn},
			func(context.Context, bus.Delivery) error { cnt.inc(); return nil })
		if err != nil {
			b.Fatal(err)
		}
		cnt.wait(b)
		reportRate(b)
		if err := sub.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		assertAllAcked(b, bb, b.N)
	})
}

// BenchmarkPerMessageCPU isolates the CPU pkg/bus spends per message outside JetStream (no
// server): what explains the gap between the raw and bus benchmarks above.
func BenchmarkPerMessageCPU(b *testing.B) {
	reg := schema.Default()
	e := received(b, 1)
	e.SetDataSchema(reg.SchemaURL(typeReceived))
	h, body, err := event.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	h.Set(jetstream.MsgIDHeader, e.ID())
	b.Run("schema_validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := reg.Validate(typeReceived, e.Data()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event_encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := event.Encode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event_decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := event.Decode(h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The span bus.Publish starts with the global (unset, hence no-op) tracer provider.
	tr := otel.GetTracerProvider().Tracer("bench")
	b.Run("otel_span_global_noop", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			_, span := tr.Start(ctx, "publish "+subjIn, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(attribute.String("messaging.system", "nats"),
					attribute.String("messaging.destination.name", subjIn),
					attribute.String("messaging.message.id", e.ID()),
					attribute.String("cloudevents.event_type", e.Type())))
			span.End()
		}
	})
	// What bus.Publish records per message with the global (unset, hence no-op) meter provider.
	ctr, err := otel.GetMeterProvider().Meter("bench").Int64Counter("bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("otel_metric_global_noop", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			ctr.Add(ctx, 1, metric.WithAttributes(attribute.String("messaging.destination.name", subjIn),
				attribute.String("cloudevents.event_type", e.Type()), attribute.String("omnibus.outcome", "ok")))
		}
	})
}
