package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

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
