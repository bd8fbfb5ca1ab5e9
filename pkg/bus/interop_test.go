package bus_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// hard is an attribute value with what header encodings trip on: spaces, '%', quotes, a
// backslash, non-ASCII.
const hard = `客户 "王芳" 100% \ conv/42`

// sdkEvent is an inbound message as a downstream developer builds it with the official SDK.
func sdkEvent(t *testing.T, id string) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("/connectors/partner")
	e.SetType(schemas.TypeChannelMessageReceived)
	e.SetSubject(hard)
	e.SetTime(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC))
	e.SetExtension(event.ExtPartitionKey, "phone:+8613800138000")
	e.SetExtension(event.ExtCorrelationID, "corr "+hard)
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{
		"channel": "partner", "channel_message_id": id,
		"from":    map[string]string{"kind": "phone", "value": "+8613800138000"},
		"message": map[string]any{"type": "text", "text": "你好"}, "sent_at": "2026-12-07T08:00:00Z",
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// The official CloudEvents SDK and its NATS JetStream binding interoperate with omnibus both
// ways: events it sends in binary and in structured mode (a bare JSON body, no content-type) are
// consumed by omnibus with every attribute intact, and omnibus's events read back through the
// SDK are identical to what was published.
func TestCloudEventsSDKInterop(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// SDK → omnibus.
	sender, err := cejs.NewSenderFromConn(b.Conn, bus.StreamIn, "omni.in.partner.message.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := cloudevents.NewClient(sender)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]cloudevents.Event{"sdk-binary": sdkEvent(t, "sdk-binary"), "sdk-structured": sdkEvent(t, "sdk-structured")}
	if res := client.Send(ctx, sent["sdk-binary"]); cloudevents.IsUndelivered(res) {
		t.Fatal(res)
	}
	if res := client.Send(binding.WithForceStructured(ctx), sent["sdk-structured"]); cloudevents.IsUndelivered(res) {
		t.Fatal(res)
	}
	got := make(chan event.Event, 2)
	sub, err := b.Client.Subscribe(ctx, bus.ConsumerConfig{Service: "interop", Stream: bus.StreamIn, FilterSubjects: []string{"omni.in.partner.>"}},
		func(_ context.Context, d bus.Delivery) error { got <- d.Event; return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Shutdown(context.Background()) }()
	for range 2 {
		select {
		case e := <-got:
			want := sent[e.ID()]
			if e.Subject() != hard || e.Source() != want.Source() || e.Type() != want.Type() || !e.Time().Equal(want.Time()) ||
				event.PartitionKey(e) != "phone:+8613800138000" || event.Ext(e, event.ExtCorrelationID) != "corr "+hard {
				t.Fatalf("omnibus read the SDK's %s as\n%s", e.ID(), e)
			}
			if string(e.Data()) != string(want.Data()) {
				t.Fatalf("data %s, want %s", e.Data(), want.Data())
			}
		case <-ctx.Done():
			t.Fatal("omnibus did not consume the SDK's events")
		}
	}
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 0 {
		t.Fatalf("%d dead letters", n)
	}

	// omnibus → SDK.
	out := sdkEvent(t, "omnibus-1")
	if err := b.Client.Publish(ctx, "omni.in.partner.message", out); err != nil {
		t.Fatal(err)
	}
	js := b.Client.JetStream()
	cons, err := js.CreateConsumer(ctx, bus.StreamIn, jetstream.ConsumerConfig{FilterSubjects: []string{"omni.in.partner.message.>", "omni.in.partner.message"},
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverLastPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	read, err := binding.ToEvent(ctx, cejs.NewMessage(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}))
	if err != nil {
		t.Fatalf("the SDK cannot read omnibus's event: %v", err)
	}
	if read.ID() != out.ID() || read.Subject() != hard || read.Source() != out.Source() || read.Type() != out.Type() ||
		!read.Time().Equal(out.Time()) || read.Extensions()[event.ExtCorrelationID] != "corr "+hard ||
		read.Extensions()[event.ExtPartitionKey] != "phone:+8613800138000" || string(read.Data()) != string(out.Data()) {
		t.Fatalf("the SDK read omnibus's event as\n%s\nwant\n%s", read, out)
	}
}
