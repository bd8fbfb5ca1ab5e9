package bus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	typeReceived = "omni.channel.message.received"
	subjIn       = "omni.in.example.message"
	subjInAll    = subjIn + ".*" // every partition
)

func received(t testing.TB, i int, opts ...event.Option) event.Event {
	t.Helper()
	data := fmt.Sprintf(`{"channel":"example","channel_message_id":"m%d","from":{"kind":"phone","value":"+8613800138%03d"},`+
		`"message":{"type":"text","text":"hello %d"},"sent_at":"2026-11-27T08:00:00Z"}`, i, i%1000, i)
	e, err := event.New(typeReceived, "/connectors/example", []byte(data), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fast is a consumer config with short backoff so retry tests run in milliseconds.
func fast(service string) bus.ConsumerConfig {
	return bus.ConsumerConfig{Service: service, Stream: bus.StreamIn, FilterSubjects: []string{"omni.in.>"},
		Backoff: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}, MaxDeliver: 3, AckWait: 2 * time.Second}
}

type recorder struct {
	mu   sync.Mutex
	seen map[string]int
	got  []bus.Delivery
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) handle(_ context.Context, d bus.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[d.Event.ID()]++
	r.got = append(r.got, d)
	return nil
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func TestProvisionIdempotent(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	for range 2 {
		if err := b.Client.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for n := range b.Client.JetStream().StreamNames(ctx).Name() {
		names[n] = true
	}
	for _, want := range []string{bus.StreamIn, bus.StreamOut, bus.StreamTool, bus.StreamDesk, bus.StreamAudit, bus.StreamDLQ} {
		if !names[want] {
			t.Errorf("stream %s not provisioned (have %v)", want, names)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	in := received(t, 1, event.WithSubject("customer/42"), event.WithCorrelationID("c-1"), event.WithPartitionKey("phone:+8613800138001"))
	if err := b.Client.Publish(ctx, subjIn, in); err != nil {
		t.Fatal(err)
	}
	// Structured mode from a foreign producer, straight through nats.go.
	st := received(t, 2, event.WithSubject("客户/43"))
	h, body, err := event.EncodeStructured(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: subjIn, Header: h, Data: body}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	sub, err := b.Client.Subscribe(ctx, fast("rt"), r.handle)
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 5*time.Second, "2 deliveries", func() bool { return r.count() == 2 })
	if err := sub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []event.Event{in, st} {
		got := r.got[i].Event
		for _, a := range [][2]string{
			{got.ID(), want.ID()}, {got.Type(), want.Type()}, {got.Source(), want.Source()},
			{got.Subject(), want.Subject()}, {got.Time().String(), want.Time().String()},
			{got.DataContentType(), want.DataContentType()}, {string(got.Data()), string(want.Data())},
			{event.CorrelationID(got), event.CorrelationID(want)}, {event.PartitionKey(got), event.PartitionKey(want)},
		} {
			if a[0] != a[1] {
				t.Errorf("event %d: attribute changed: %q != %q", i, a[0], a[1])
			}
		}
		if i == 0 && got.DataSchema() == "" {
			t.Errorf("event %d: dataschema not set", i)
		}
		if bus.SubjectTemplate(r.got[i].Subject) != subjIn || r.got[i].Stream != bus.StreamIn || r.got[i].NumDelivered != 1 {
			t.Errorf("delivery metadata: %+v", r.got[i])
		}
	}
}

func TestPublishRejectsInvalid(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	bad, err := event.New(typeReceived, "/x", map[string]any{"channel": "example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Publish(context.Background(), subjIn, bad); !errors.Is(err, schema.ErrInvalid) {
		t.Fatalf("want schema.ErrInvalid, got %v", err)
	}
	unknown, _ := event.New("omni.nothing.happened", "/x", map[string]any{})
	if err := b.Client.Publish(context.Background(), subjIn, unknown); !errors.Is(err, schema.ErrUnknownType) {
		t.Fatalf("want schema.ErrUnknownType, got %v", err)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("invalid events reached the stream: %d", n)
	}
}

func TestDuplicateIDStoredOnce(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	e := received(t, 1, event.WithID("example:vendor-msg-1"))
	for range 3 {
		if err := b.Client.Publish(ctx, subjIn, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Client.PublishBatch(ctx, []bus.Outgoing{{subjIn, e}, {subjIn, e}}); err != nil {
		t.Fatal(err)
	}
	if n := b.StoredCount(t, bus.StreamIn, subjInAll); n != 1 {
		t.Fatalf("stored %d copies of one event id", n)
	}
}

func TestPublishBatch(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	batch := make([]bus.Outgoing, 500)
	for i := range batch {
		batch[i] = bus.Outgoing{Subject: subjIn, Event: received(t, i)}
	}
	bad, _ := event.New(typeReceived, "/x", map[string]any{})
	// Invalid events first, inside and last: a large batch is validated in parallel, and each
	// failure must still be reported at its own index.
	batch = slices.Insert(batch, 250, bus.Outgoing{Subject: subjIn, Event: bad})
	batch = slices.Insert(batch, 0, bus.Outgoing{Subject: subjIn, Event: bad})
	batch = append(batch, bus.Outgoing{Subject: subjIn, Event: bad})
	err := b.Client.PublishBatch(context.Background(), batch)
	var berr *bus.BatchError
	if !errors.Is(err, schema.ErrInvalid) || !errors.As(err, &berr) {
		t.Fatalf("want the invalid ones reported, got %v", err)
	}
	if got := slices.Sorted(maps.Keys(berr.Failed)); !slices.Equal(got, []int{0, 251, 502}) {
		t.Fatalf("failed indexes %v, want [0 251 502]", got)
	}
	if n := b.StoredCount(t, bus.StreamIn, subjInAll); n != 500 {
		t.Fatalf("stored %d of 500 valid events", n)
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	e := received(t, 1)
	if err := b.Client.Publish(ctx, subjIn, e); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var times []time.Time
	sub, err := b.Client.Subscribe(ctx, fast("flaky"), func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return fmt.Errorf("crm is down (attempt %d)", d.NumDelivered)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	bustest.WaitFor(t, 5*time.Second, "dead letter", func() bool { return b.StoredCount(t, bus.StreamDLQ, "omni.dlq.flaky") == 1 })
	mu.Lock()
	if len(times) != 3 {
		t.Errorf("handler ran %d times, want MaxDeliver=3", len(times))
	}
	if len(times) >= 2 && times[1].Sub(times[0]) < 8*time.Millisecond {
		t.Errorf("redelivered after %s, before the backoff", times[1].Sub(times[0]))
	}
	mu.Unlock()
	dl, err := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{Service: "flaky"})
	if err != nil || len(dl) != 1 {
		t.Fatalf("list: %v %v", dl, err)
	}
	d := dl[0]
	if bus.SubjectTemplate(d.OriginalSubject) != subjIn || d.Consumer != "flaky" || d.Deliveries != 3 || d.EventID != e.ID() || d.OriginalStream != bus.StreamIn {
		t.Errorf("dead letter metadata: %+v", d)
	}
	if want := "max deliveries (3) reached: crm is down (attempt 3)"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

func TestPermanentErrorsDeadLetterAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		publish func(t *testing.T, b *bustest.Bundle)
		handler bus.Handler
		reason  string
	}{
		{"schema invalid", func(t *testing.T, b *bustest.Bundle) {
			bad, _ := event.New(typeReceived, "/x", map[string]any{"channel": "example"})
			h, body, _ := event.Encode(bad)
			if _, err := b.Client.JetStream().PublishMsg(context.Background(), &nats.Msg{Subject: subjIn, Header: h, Data: body}); err != nil {
				t.Fatal(err)
			}
		}, nil, "schema:"},
		{"undecodable", func(t *testing.T, b *bustest.Bundle) {
			if _, err := b.Client.JetStream().Publish(context.Background(), subjIn, []byte("not an event")); err != nil {
				t.Fatal(err)
			}
		}, nil, "undecodable:"},
		{"handler permanent", func(t *testing.T, b *bustest.Bundle) {
			if err := b.Client.Publish(context.Background(), subjIn, received(t, 7)); err != nil {
				t.Fatal(err)
			}
		}, func(context.Context, bus.Delivery) error {
			return bus.Permanent(errors.New("unknown channel account"))
		}, "permanent: unknown channel account"},
		{"handler panic then max deliveries", func(t *testing.T, b *bustest.Bundle) {
			if err := b.Client.Publish(context.Background(), subjIn, received(t, 8)); err != nil {
				t.Fatal(err)
			}
		}, func(context.Context, bus.Delivery) error { panic("boom") }, "handler panic: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := bustest.New(t)
			tc.publish(t, b)
			var calls atomic.Int32
			h := tc.handler
			if h == nil {
				h = func(context.Context, bus.Delivery) error { calls.Add(1); return nil }
			}
			sub, err := b.Client.Subscribe(context.Background(), fast("svc"), h)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop()
			bustest.WaitFor(t, 5*time.Second, "dead letter", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 1 })
			dl, err := b.Client.ListDeadLetters(context.Background(), bus.DeadLetterFilter{})
			if err != nil || len(dl) != 1 {
				t.Fatalf("%v %v", dl, err)
			}
			if !strings.Contains(dl[0].Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", dl[0].Reason, tc.reason)
			}
			if tc.handler == nil && (calls.Load() != 0 || dl[0].Deliveries != 1) {
				t.Errorf("bad message reached the handler (%d calls) or was retried (%d deliveries)", calls.Load(), dl[0].Deliveries)
			}
		})
	}
}

func TestRedrive(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var healthy atomic.Bool
	r := newRecorder()
	for i := range 4 {
		if err := b.Client.Publish(ctx, subjIn, received(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := b.Client.Subscribe(ctx, fast("redrive"), func(ctx context.Context, d bus.Delivery) error {
		if !healthy.Load() {
			return bus.Permanent(errors.New("vendor rejected"))
		}
		return r.handle(ctx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	bustest.WaitFor(t, 5*time.Second, "4 dead letters", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 4 })
	all, err := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{ReasonContains: "VENDOR"})
	if err != nil || len(all) != 4 {
		t.Fatalf("list by reason: %d %v", len(all), err)
	}
	healthy.Store(true)
	n, err := b.Client.Redrive(ctx, bus.DeadLetterFilter{Seqs: []uint64{all[0].Seq, all[2].Seq}})
	if err != nil || n != 2 {
		t.Fatalf("redrive by seq: %d %v", n, err)
	}
	bustest.WaitFor(t, 5*time.Second, "2 redriven deliveries", func() bool { return r.count() == 2 })
	n, err = b.Client.Redrive(ctx, bus.DeadLetterFilter{Subject: "omni.in.*.message.*"})
	if err != nil || n != 2 {
		t.Fatalf("redrive by subject: %d %v", n, err)
	}
	bustest.WaitFor(t, 5*time.Second, "4 redriven deliveries", func() bool { return r.count() == 4 })
	if left, _ := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{}); len(left) != 0 {
		t.Fatalf("redriven letters still listed: %d", len(left))
	}
	if len(r.seen) != 4 {
		t.Fatalf("distinct events handled: %d", len(r.seen))
	}
}

func TestDiscardDeadLetters(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	for i, svc := range []string{"sms", "sms", "crm"} {
		if err := b.Client.DeadLetterEvent(ctx, svc, subjIn, received(t, i), fmt.Sprintf("reason %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Client.DiscardDeadLetters(ctx, bus.DeadLetterFilter{}); !errors.Is(err, bus.ErrEmptyFilter) {
		t.Fatalf("empty filter: %v", err)
	}
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 3 {
		t.Fatalf("an empty filter discarded: %d left", n)
	}
	all, err := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d %v", len(all), err)
	}
	got, err := b.Client.DiscardDeadLetters(ctx, bus.DeadLetterFilter{Seqs: []uint64{all[1].Seq}})
	if err != nil || len(got) != 1 || got[0].EventID != all[1].EventID || got[0].Reason != "reason 1" {
		t.Fatalf("discard by seq: %+v %v", got, err)
	}
	if got, err = b.Client.DiscardDeadLetters(ctx, bus.DeadLetterFilter{Service: "crm"}); err != nil || len(got) != 1 || got[0].Subject != "omni.dlq.crm" {
		t.Fatalf("discard by service: %+v %v", got, err)
	}
	left, err := b.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	if err != nil || len(left) != 1 || left[0].Seq != all[0].Seq {
		t.Fatalf("left: %+v %v", left, err)
	}
	if got, err = b.Client.DiscardDeadLetters(ctx, bus.DeadLetterFilter{All: true}); err != nil || len(got) != 1 {
		t.Fatalf("discard all: %+v %v", got, err)
	}
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 0 {
		t.Fatalf("left after all: %d", n)
	}
	// Nothing sent anywhere: a discarded letter is gone, not redriven.
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("discard published %d", n)
	}
}

// An idempotent handler (effects keyed by event id) on a consumer stopped mid-stream — by
// cancellation (drain) and by a hard stop without drain — and restarted sees every event and
// applies each effect once.
func TestStopAndRestartMidStream(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cancel", "hard"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := bustest.New(t)
			ctx := context.Background()
			const total = 400
			batch := make([]bus.Outgoing, total)
			for i := range batch {
				batch[i] = bus.Outgoing{subjIn, received(t, i)}
			}
			if err := b.Client.PublishBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			effects := map[string]int{} // the "database": one row per event id
			applied := 0
			handler := func(_ context.Context, d bus.Delivery) error {
				time.Sleep(200 * time.Microsecond)
				mu.Lock()
				defer mu.Unlock()
				if _, dup := effects[d.Event.ID()]; !dup {
					applied++
				}
				effects[d.Event.ID()]++
				return nil
			}
			cfg := fast("restart")
			cfg.AckWait = 500 * time.Millisecond
			cfg.Concurrency = 4

			// First run: stop after ~100 messages.
			c1 := b.Connect(t)
			runCtx, cancel := context.WithCancel(ctx)
			sub, err := c1.Subscribe(runCtx, cfg, handler)
			if err != nil {
				t.Fatal(err)
			}
			bustest.WaitFor(t, 5*time.Second, "progress", func() bool { mu.Lock(); defer mu.Unlock(); return applied >= 100 })
			if mode == "cancel" {
				cancel()
				<-sub.Closed()
			} else {
				cancel()
				c1.Conn().Close() // hard stop: no drain, acks in flight may be lost
				<-sub.Closed()
			}
			// Second run on a new connection.
			c2 := b.Connect(t)
			sub2, err := c2.Subscribe(ctx, cfg, handler)
			if err != nil {
				t.Fatal(err)
			}
			bustest.WaitFor(t, 10*time.Second, "all events", func() bool { mu.Lock(); defer mu.Unlock(); return applied == total })
			if err := sub2.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(effects) != total {
				t.Fatalf("effects for %d events, want %d", len(effects), total)
			}
		})
	}
}

func TestTraceContinues(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	b := bustest.New(t, bus.WithTracerProvider(tp))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "webhook")
	if err := b.Client.Publish(ctx, subjIn, received(t, 1)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	done := make(chan struct{})
	var ext string
	sub, err := b.Client.Subscribe(context.Background(), fast("trace"), func(ctx context.Context, d bus.Delivery) error {
		ext = event.Ext(d.Event, event.ExtTraceParent)
		close(done)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if err := sub.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var pub, proc trace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "publish " + subjIn:
			pub = s
		case "process " + subjIn:
			proc = s
		}
	}
	if pub == nil || proc == nil {
		t.Fatalf("spans: %v", rec.Ended())
	}
	if proc.SpanContext().TraceID() != parent.SpanContext().TraceID() || pub.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Fatalf("trace broken: webhook %s publish %s process %s", parent.SpanContext().TraceID(), pub.SpanContext().TraceID(), proc.SpanContext().TraceID())
	}
	if proc.Parent().SpanID() != pub.SpanContext().SpanID() {
		t.Errorf("process span's parent is %s, want the publish span %s", proc.Parent().SpanID(), pub.SpanContext().SpanID())
	}
	if want := "00-" + parent.SpanContext().TraceID().String() + "-" + parent.SpanContext().SpanID().String() + "-01"; ext != want {
		t.Errorf("traceparent extension %q, want the creation context %q", ext, want)
	}
	var system string
	for _, a := range proc.Attributes() {
		if a.Key == "messaging.system" {
			system = a.Value.AsString()
		}
	}
	if system != "nats" {
		t.Errorf("messaging.system = %q", system)
	}
}

// An event that carries its creation context, published outside any span (an outbox relay), is
// published in that trace; a batch handler gets one span linking its deliveries' spans, and each
// delivery's own span context to continue.
func TestTraceThroughBatchesAndRelays(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	b := bustest.New(t, bus.WithTracerProvider(tp))
	const creation = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var events []bus.Outgoing
	for i := range 3 {
		e := received(t, i)
		if i == 0 {
			e.SetExtension(event.ExtTraceParent, creation)
		}
		events = append(events, bus.Outgoing{Subject: subjIn, Event: e})
	}
	if err := b.Client.PublishBatch(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	got := make(chan []bus.Delivery, 4)
	cfg := fast("batched")
	cfg.PullMaxMessages = 8
	sub, err := b.Client.SubscribeBatch(context.Background(), cfg, 8, func(_ context.Context, batch []bus.Delivery) []error {
		got <- batch
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []bus.Delivery
	for len(all) < 3 {
		all = append(all, <-got...)
	}
	if err := sub.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if !d.SpanContext.IsValid() {
			t.Fatalf("delivery %s has no span context", d.Event.ID())
		}
		if d.Event.ID() == events[0].Event.ID() && d.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("the relayed event was consumed in trace %s, want its creation trace", d.SpanContext.TraceID())
		}
	}
	for _, s := range rec.Ended() {
		if s.Name() == "publish "+subjIn && s.Parent().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" &&
			s.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("the relayed event's publish span's parent is %s, want its creation span", s.Parent().SpanID())
		}
		if strings.HasPrefix(s.Name(), "process batch ") && len(s.Links()) < 2 {
			t.Errorf("batch span %s links %d deliveries", s.Name(), len(s.Links()))
		}
	}
}

// Publishers run while the consumer shuts down and a new one takes over: every event a publisher
// got an ack for is handled.
func TestShutdownUnderLoseNothing(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	handled := map[string]bool{}
	handler := func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		handled[d.Event.ID()] = true
		mu.Unlock()
		return nil
	}
	cfg := fast("load")
	cfg.Concurrency = 8
	sub, err := b.Client.Subscribe(ctx, cfg, handler)
	if err != nil {
		t.Fatal(err)
	}
	var acked sync.Map
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				e := received(t, p*1000+i)
				if err := b.Client.Publish(ctx, subjIn, e); err == nil {
					acked.Store(e.ID(), true)
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sub.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	sub2, err := b.Client.Subscribe(ctx, cfg, handler)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	acked.Range(func(any, any) bool { want++; return true })
	bustest.WaitFor(t, 10*time.Second, "every acked event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		acked.Range(func(k, _ any) bool {
			if handled[k.(string)] {
				n++
			}
			return true
		})
		return n == want
	})
	_ = sub2.Shutdown(ctx)
	if want != 1000 {
		t.Errorf("only %d of 1000 publishes acked", want)
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	for _, tc := range []struct {
		name string
		cfg  bus.ConsumerConfig
	}{
		{"no service", bus.ConsumerConfig{Stream: bus.StreamIn}},
		{"no stream", bus.ConsumerConfig{Service: "x"}},
		{"negative concurrency", bus.ConsumerConfig{Service: "x", Stream: bus.StreamIn, Concurrency: -1}},
		{"ack pending below concurrency", bus.ConsumerConfig{Service: "x", Stream: bus.StreamIn, Concurrency: 8, MaxAckPending: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := b.Client.Subscribe(context.Background(), tc.cfg, nil); !errors.Is(err, bus.ErrInvalidConsumer) {
				t.Fatalf("want ErrInvalidConsumer, got %v", err)
			}
		})
	}
}

func TestSubscribeBatch(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	const total = 1000
	batch := make([]bus.Outgoing, total)
	for i := range batch {
		batch[i] = bus.Outgoing{Subject: subjIn, Event: received(t, i)}
	}
	if err := b.Client.PublishBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	poison := batch[5].Event.ID()
	var mu sync.Mutex
	var order []string
	maxSize := 0
	sub, err := b.Client.SubscribeBatch(ctx, fast("batch"), 100, func(_ context.Context, ds []bus.Delivery) []error {
		mu.Lock()
		defer mu.Unlock()
		maxSize = max(maxSize, len(ds))
		errs := make([]error, len(ds))
		for i, d := range ds {
			if d.Event.ID() == poison {
				errs[i] = bus.Permanent(errors.New("poison"))
				continue
			}
			order = append(order, d.Event.ID())
		}
		return errs
	})
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "all handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == total-1 })
	if err := sub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if maxSize < 2 || maxSize > 100 {
		t.Errorf("batch sizes up to %d, want between 2 and 100 for a backlog", maxSize)
	}
	j := 0
	for _, o := range batch {
		if o.Event.ID() == poison {
			continue
		}
		if order[j] != o.Event.ID() {
			t.Fatalf("order broken at %d", j)
		}
		j++
	}
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 1 {
		t.Fatalf("dead letters %d, want the poison one", n)
	}
}

// With Linger, while messages keep coming, a batch waits for the ones published right after its
// first; the first message after a quiet spell does not wait.
func TestSubscribeBatchLinger(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	var sizes []int
	batches := make(chan struct{}, 16)
	cfg := fast("linger")
	cfg.Linger = 300 * time.Millisecond
	sub, err := b.Client.SubscribeBatch(ctx, cfg, 100, func(_ context.Context, ds []bus.Delivery) []error {
		mu.Lock()
		sizes = append(sizes, len(ds))
		mu.Unlock()
		batches <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if err := b.Client.Publish(ctx, subjIn, received(t, 0)); err != nil {
		t.Fatal(err)
	}
	<-batches // a first message: handled at once, alone
	// Three more, within the linger of the batch the first of them starts.
	for i := 1; i <= 3; i++ {
		if err := b.Client.Publish(ctx, subjIn, received(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	<-batches
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1, 3}) {
		t.Fatalf("batch sizes %v, want [1 3]", sizes)
	}
}

// Messages stamped by a pkg/bus producer with the same schema set are not validated twice;
// AlwaysValidate checks them anyway.
func TestSchemaStamp(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	if err := b.Client.Publish(ctx, subjIn, received(t, 1)); err != nil {
		t.Fatal(err)
	}
	// A forged stamp on invalid data.
	bad, _ := event.New(typeReceived, "/x", map[string]any{"channel": "example"})
	h, body, _ := event.Encode(bad)
	h.Set(bus.HeaderSchema, b.Client.Schemas().Fingerprint())
	if _, err := b.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: subjIn, Header: h, Data: body}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	cfg := fast("strict")
	cfg.AlwaysValidate = true
	sub, err := b.Client.Subscribe(ctx, cfg, r.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	bustest.WaitFor(t, 5*time.Second, "the forged one dead-lettered", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 1 })
	bustest.WaitFor(t, 5*time.Second, "the valid one handled", func() bool { return r.count() == 1 })
}

// A message no consumer can decode is dead-lettered once, whatever number of consumers meet
// it: each of three services' consumers takes it off its queue, and OMNI_DLQ holds one letter.
func TestUndecodableDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	if _, err := b.Client.JetStream().Publish(ctx, subjIn, []byte(`{"specversion":"1.0","id":`)); err != nil {
		t.Fatal(err)
	}
	var cfgs []bus.ConsumerConfig
	for _, svc := range []string{"unifier", "audit", "desk"} {
		cfg := fast(svc)
		cfg.Durable = svc + "-in"
		sub, err := b.Client.Subscribe(ctx, cfg, func(context.Context, bus.Delivery) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		cfgs = append(cfgs, cfg)
	}
	bustest.WaitFor(t, 10*time.Second, "every consumer past the message", func() bool {
		for _, cfg := range cfgs {
			c, err := b.Client.JetStream().Consumer(ctx, cfg.Stream, cfg.Durable)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumPending != 0 || info.NumAckPending != 0 || info.Delivered.Stream == 0 {
				return false
			}
		}
		return true
	})
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 1 {
		t.Fatalf("%d dead letters for one undecodable message, want 1", n)
	}
}

// TestDataSchemaBase: with a base, published events' dataschema is the base's URL of their
// type's schema (where the process serves it), a dataschema the producer set is kept, and a base
// that is not an absolute http(s) URL is refused.
func TestDataSchemaBase(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	c, err := bus.Connect(b.Conn, bus.WithDataSchemaBase("http://127.0.0.1:8080/schemas"))
	if err != nil {
		t.Fatal(err)
	}
	plain, own := received(t, 1), received(t, 2, event.WithDataSchema("https://example.com/mine.json"))
	for _, e := range []event.Event{plain, own} {
		if err := c.Publish(ctx, subjIn, e); err != nil {
			t.Fatal(err)
		}
	}
	r := newRecorder()
	sub, err := b.Client.Subscribe(ctx, fast("ds"), r.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	bustest.WaitFor(t, 5*time.Second, "2 deliveries", func() bool { return r.count() == 2 })
	got := map[string]string{}
	for _, d := range r.got {
		got[d.Event.ID()] = d.Event.DataSchema()
	}
	if want := "http://127.0.0.1:8080/schemas/" + typeReceived + ".json"; got[plain.ID()] != want {
		t.Errorf("dataschema %q, want %q", got[plain.ID()], want)
	}
	if got[own.ID()] != "https://example.com/mine.json" {
		t.Errorf("the producer's dataschema was replaced: %q", got[own.ID()])
	}
	for _, bad := range []string{"schemas/", "ftp://x/", "http:///schemas/", "://"} {
		if _, err := bus.Connect(b.Conn, bus.WithDataSchemaBase(bad)); !errors.Is(err, bus.ErrInvalidOption) {
			t.Errorf("base %q: %v, want ErrInvalidOption", bad, err)
		}
	}
}
