package allinone

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// TestDataSchemaServed: an event the all-in-one publishes names as its dataschema a URL the
// all-in-one serves, and that URL answers the very schema the event was validated against; with
// OMNIBUS_PUBLIC_URL the dataschema is under the public URL instead.
func TestDataSchemaServed(t *testing.T) {
	t.Parallel()
	const typ, subject = "omni.channel.message.received", "omni.in.example.message"
	want, err := fs.ReadFile(schemas.FS(), typ+".json")
	if err != nil {
		t.Fatal(err)
	}
	for _, public := range []string{"", "https://omnibus.example.com/"} {
		b := bustest.New(t)
		cfg := Config{HTTPAddr: "127.0.0.1:0", NATSURL: b.Server.ClientURL(), PublicURL: public, DataDir: t.TempDir(),
			SimInterval: time.Second, ShutdownTimeout: 5 * time.Second}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		publisher := service.Service{Name: "publisher", Publishes: []service.Route{{Subject: subject, Type: typ}},
			Run: func(ctx context.Context, d service.Deps) error {
				e, err := event.New(typ, "/test", map[string]any{
					"channel": "example", "channel_message_id": "m1", "from": map[string]string{"kind": "phone", "value": "+8613800138000"},
					"message": map[string]any{"type": "text", "text": "hi"}, "sent_at": "2026-12-07T08:00:00Z",
				})
				if err != nil {
					return err
				}
				if err := d.Bus.Publish(ctx, subject, e); err != nil {
					return err
				}
				d.MarkStarted()
				<-ctx.Done()
				return nil
			}}
		ctx, cancel := context.WithCancel(context.Background())
		baseCh, done := make(chan string, 1), make(chan error, 1)
		go func() {
			done <- Run(ctx, cfg, func(string) []service.Service { return []service.Service{publisher} },
				func(string) (string, bool) { return "", false }, slog.New(slog.DiscardHandler), func(b string) { baseCh <- b })
		}()
		var base string
		select {
		case base = <-baseCh:
		case err := <-done:
			t.Fatalf("all-in-one exited: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("all-in-one not ready after 20s")
		}
		got := make(chan event.Event, 1)
		sub, err := b.Client.Subscribe(ctx, bus.ConsumerConfig{Service: "reader", Stream: bus.StreamIn}, func(_ context.Context, d bus.Delivery) error {
			got <- d.Event
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var e event.Event
		select {
		case e = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the published event was not read back")
		}
		sub.Stop()
		wantURL := base + "/schemas/" + typ + ".json"
		if public != "" {
			wantURL = public + "schemas/" + typ + ".json"
		}
		if e.DataSchema() != wantURL {
			t.Fatalf("dataschema %q, want %q", e.DataSchema(), wantURL)
		}
		// Served where it points (the public URL is this same listener behind a proxy).
		resp, err := http.Get(base + "/schemas/" + typ + ".json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != string(want) || resp.Header.Get("Content-Type") != "application/schema+json" {
			t.Fatalf("GET %s: %d %s, %d bytes", e.DataSchema(), resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("all-in-one stopped with %v", err)
		}
	}
	if err := (&Config{HTTPAddr: "127.0.0.1:0", NATSURL: "nats://x", PublicURL: "omnibus.example.com", SimInterval: time.Second}).Validate(); err == nil {
		t.Fatal("OMNIBUS_PUBLIC_URL without a scheme was accepted")
	}
}
