package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
)

// A connector publishes an inbound message; the unifier's consumer gets it, decoded and
// validated, and acks it when the handler returns nil.
func Example() {
	srv, err := natsembed.Start(natsembed.Options{Sync: "2m"})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("example")
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	client, err := bus.Connect(nc, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := client.Provision(ctx); err != nil {
		panic(err)
	}

	e, err := event.New("omni.channel.message.received", "/connectors/sms", map[string]any{
		"channel": "sms", "channel_message_id": "up-1",
		"from":    map[string]string{"kind": "phone", "value": "+8613800138000"},
		"message": map[string]any{"type": "text", "text": "我的快递到哪了？"}, "sent_at": "2026-11-27T08:00:00Z",
	}, event.WithID("sms:up-1"), event.WithPartitionKey("phone:+8613800138000"))
	if err != nil {
		panic(err)
	}
	if err := client.Publish(ctx, "omni.in.sms.message", e); err != nil {
		panic(err)
	}

	done := make(chan struct{})
	sub, err := client.Subscribe(ctx, bus.ConsumerConfig{Service: "unifier", Stream: bus.StreamIn},
		func(_ context.Context, d bus.Delivery) error {
			fmt.Println(d.Event.Type(), d.Event.ID(), bus.SubjectTemplate(d.Subject))
			close(done)
			return nil
		})
	if err != nil {
		panic(err)
	}
	<-done
	_ = sub.Shutdown(ctx)
	// Output: omni.channel.message.received sms:up-1 omni.in.sms.message
}

// StreamOf names the stream a subject, or a consumer's subject pattern, is stored in.
func ExampleStreamOf() {
	for _, subject := range []string{"omni.in.wechatkf.message", "omni.tool.crm.>", "omni.ops.alert.raised", "elsewhere"} {
		stream, ok := bus.StreamOf(subject)
		fmt.Println(subject, stream, ok)
	}
	// Output:
	// omni.in.wechatkf.message OMNI_IN true
	// omni.tool.crm.> OMNI_TOOL true
	// omni.ops.alert.raised OMNI_OPS true
	// elsewhere  false
}

// A handler steers what happens to a message it could not handle by the kind of error it
// returns.
func ExamplePermanent() {
	for _, err := range []error{
		bus.Permanent(errors.New("unknown channel account")),            // dead-lettered now
		bus.RetryAfter(errors.New("vendor rate limit"), 30*time.Second), // redelivered in 30 s
		bus.Unavailable(errors.New("postgres: connection refused")),     // the consumer pauses
		errors.New("timeout"), // redelivered with backoff
	} {
		d, _ := bus.RetryDelay(err)
		fmt.Printf("%-40s permanent=%t delay=%s unavailable=%t\n", err, bus.IsPermanent(err), d, bus.IsUnavailable(err))
	}
	// Output:
	// permanent: unknown channel account       permanent=true delay=0s unavailable=false
	// vendor rate limit (retry after 30s)      permanent=false delay=30s unavailable=false
	// unavailable: postgres: connection refused permanent=false delay=0s unavailable=true
	// timeout                                  permanent=false delay=0s unavailable=false
}

// A connector streams progress on a live subject (core NATS, at most once, never stored); a
// subscriber that is listening gets it, validated like any event.
func ExampleClient_PublishLive() {
	srv, err := natsembed.Start(natsembed.Options{Sync: "2m"})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("example")
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	client, err := bus.Connect(nc, bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	got := make(chan string, 1)
	sub, err := client.SubscribeLive("omni.live.ai.suggest.*", func(_ context.Context, subject string, e event.Event) {
		got <- subject + " " + string(e.Data())
	})
	if err != nil {
		panic(err)
	}
	defer func() { _ = sub.Stop() }()
	if err := nc.Flush(); err != nil { // the subscription is in place before the publish
		panic(err)
	}
	e, err := event.New("omni.live.ai.suggest.delta", "/connectors/assist",
		map[string]any{"conversation_id": "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f", "seq": 1, "text": "您好，"})
	if err != nil {
		panic(err)
	}
	if err := client.PublishLive(context.Background(), "omni.live.ai.suggest.r1", e); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	err = client.PublishLive(context.Background(), "omni.tool.ai.suggest.completed", e)
	fmt.Println(errors.Is(err, bus.ErrNotLive))
	// Output:
	// omni.live.ai.suggest.r1 {"conversation_id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","seq":1,"text":"您好，"}
	// true
}
