package bustest_test

import (
	"context"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// Tests poll with Events: polling must not leave a consumer behind per call (the server caps
// consumers, and a leaking poll loop once failed a test with "maximum consumers limit reached").
func TestEventsLeavesNoConsumer(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	e, err := event.New("omni.channel.message.received", "/test", map[string]any{
		"channel": "example", "channel_message_id": "m1", "from": map[string]string{"kind": "phone", "value": "+8613900000001"},
		"message": map[string]any{"type": "text", "text": "hi"}, "sent_at": "2026-11-27T08:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Publish(ctx, "omni.in.example.message", e); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if got := b.Events(t, bus.StreamIn, "omni.in.>"); len(got) != 1 {
			t.Fatalf("events: %d", len(got))
		}
	}
	s, err := b.Client.JetStream().Stream(ctx, bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n != 0 {
		t.Fatalf("%d consumers left on %s after 50 polls", n, bus.StreamIn)
	}
}
