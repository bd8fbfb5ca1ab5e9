package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func natsMsg(subject string, h nats.Header, body []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: h, Data: body}
}

const typeDelta = "omni.live.ai.suggest.delta"

func delta(t testing.TB, seq int, text string) event.Event {
	t.Helper()
	e, err := event.New(typeDelta, "/connectors/assist",
		[]byte(fmt.Sprintf(`{"conversation_id":"c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f","seq":%d,"text":%q}`, seq, text)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLive(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) *bustest.Bundle { t.Helper(); return bustest.New(t, bus.WithLogger(quietLog())) }

	t.Run("DeliveredInOrderAndNeverStored", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := make(chan event.Event, 10)
		sub, err := b.Client.SubscribeLive("omni.live.ai.suggest.*", func(_ context.Context, subject string, e event.Event) {
			if subject != "omni.live.ai.suggest.r1" {
				t.Errorf("subject %s", subject)
			}
			got <- e
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Stop() })
		if err := b.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := 1; i <= 3; i++ {
			if err := b.Client.PublishLive(ctx, "omni.live.ai.suggest.r1", delta(t, i, "片段")); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= 3; i++ {
			select {
			case e := <-got:
				if e.Type() != typeDelta || e.Source() != "/connectors/assist" {
					t.Fatalf("event %v", e)
				}
				var d struct{ Seq int }
				if err := event.DecodeData(e, &d); err != nil || d.Seq != i {
					t.Fatalf("delta %d: seq %d, %v", i, d.Seq, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("delta %d not delivered", i)
			}
		}
		// No stream stored any of it.
		for name := range b.Client.JetStream().StreamNames(ctx).Name() {
			s, err := b.Client.JetStream().Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if info, _ := s.Info(ctx); info != nil && info.State.Msgs != 0 {
				t.Errorf("stream %s holds %d messages", name, info.State.Msgs)
			}
		}
		if err := sub.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := sub.Stop(); err != nil { // twice is fine
			t.Fatal(err)
		}
	})

	t.Run("RejectsStoredOrForeignSubjects", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, subject := range []string{"omni.tool.ai.suggest.completed", "omni.live.", "live.x", ""} {
			if err := b.Client.PublishLive(context.Background(), subject, delta(t, 1, "x")); !errors.Is(err, bus.ErrNotLive) {
				t.Errorf("PublishLive(%q): %v, want ErrNotLive", subject, err)
			}
			if _, err := b.Client.SubscribeLive(subject, func(context.Context, string, event.Event) {}); !errors.Is(err, bus.ErrNotLive) {
				t.Errorf("SubscribeLive(%q): %v, want ErrNotLive", subject, err)
			}
		}
	})

	t.Run("SpanNamesDoNotMultiplyByRequest", func(t *testing.T) {
		t.Parallel()
		if got := bus.SubjectTemplate("omni.live.ai.suggest.0193a3f0-7c1e"); got != "omni.live.ai.suggest.*" {
			t.Fatalf("SubjectTemplate = %q", got)
		}
	})

	t.Run("ValidatesBothSides", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if err := b.Client.PublishLive(context.Background(), "omni.live.ai.suggest.r1", delta(t, 0, "x")); !errors.Is(err, schema.ErrInvalid) {
			t.Fatalf("invalid delta published: %v", err)
		}
		got := make(chan event.Event, 1)
		sub, err := b.Client.SubscribeLive("omni.live.>", func(_ context.Context, _ string, e event.Event) { got <- e })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Stop() })
		if err := b.Conn.Flush(); err != nil {
			t.Fatal(err)
		}
		// A foreign producer's invalid event is dropped; the valid one after it arrives.
		h, body, err := event.Encode(delta(t, 0, "x"))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Conn.PublishMsg(natsMsg("omni.live.ai.suggest.r2", h, body)); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.PublishLive(context.Background(), "omni.live.ai.suggest.r2", delta(t, 2, "ok")); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-got:
			var d struct{ Seq int }
			if err := event.DecodeData(e, &d); err != nil || d.Seq != 2 {
				t.Fatalf("got seq %d (%v), want the valid delta", d.Seq, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("valid delta not delivered")
		}
	})
}
