package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// TestDataProtector: a producer holding the keys seals the phone of every event it publishes
// (data and partition key); the stream's files never hold it; a consumer holding the keys handles
// the clear event, one without them the sealed form, which validates; a replay opens it; an event
// dead-lettered by a producer is sealed too.
func TestDataProtector(t *testing.T) {
	t.Parallel()
	keys, err := pii.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	sealer := pii.NewEvents(keys)
	b := bustest.New(t, bus.WithDataProtector(sealer))
	ctx := context.Background()

	const phone = "+8613800138007"
	e := received(t, 7, event.WithPartitionKey("phone:"+phone))
	if err := b.Client.Publish(ctx, subjIn, e); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.PublishBatch(ctx, []bus.Outgoing{{Subject: subjIn, Event: received(t, 8, event.WithPartitionKey("phone:+8613800138008"))}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.DeadLetterEvent(ctx, "test", subjIn, received(t, 9), "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.Data()), phone) || event.PartitionKey(e) != "phone:"+phone {
		t.Fatal("Publish changed the caller's event")
	}

	// What the log holds: sealed, and valid.
	stored := b.Events(t, bus.StreamIn, subjInAll)
	if len(stored) != 2 {
		t.Fatalf("stored %d events", len(stored))
	}
	for _, s := range stored {
		if bytes.Contains(s.Data(), []byte("13800138")) || strings.Contains(event.PartitionKey(s), "13800138") {
			t.Fatalf("the log holds a clear phone: %s (partitionkey %s)", s.Data(), event.PartitionKey(s))
		}
		var d struct{ From pii.Sealed }
		if err := json.Unmarshal(s.Data(), &d); err != nil || d.From.Masked == "" || d.From.Index != keys.BlindIndex("phone", "+86"+"13800138"+d.From.Masked[len(d.From.Masked)-3:]) {
			t.Fatalf("sealed from %+v (%v)", d.From, err)
		}
		if err := b.Client.Schemas().Validate(s.Type(), s.Data()); err != nil {
			t.Fatalf("the sealed form does not validate: %v", err)
		}
	}
	if dl := b.Events(t, bus.StreamDLQ, ">"); len(dl) != 1 || bytes.Contains(dl[0].Data(), []byte("13800138")) {
		t.Fatalf("dead letter: %d events, %s", len(dl), dl)
	}
	// Not in the stream's files either (the server fsyncs on Stop; the store is read raw).
	dir := b.Server.StoreDir()
	b.Server.Shutdown()
	if leak := grepDir(t, dir, "13800138"); leak != "" {
		t.Fatalf("a clear phone in the JetStream store: %s", leak)
	}
}

func TestDataProtectorConsumers(t *testing.T) {
	t.Parallel()
	keys, _ := pii.NewKeys()
	sealer := pii.NewEvents(keys)
	b := bustest.New(t, bus.WithDataProtector(sealer))
	ctx := context.Background()
	const phone = "+8613800138011"
	if err := b.Client.Publish(ctx, subjIn, received(t, 11)); err != nil {
		t.Fatal(err)
	}
	withKeys, without, kept := newRecorder(), newRecorder(), newRecorder()
	for _, c := range []struct {
		client *bus.Client
		rec    *recorder
		name   string
	}{{b.Client, withKeys, "with-keys"}, {b.Connect(t), without, "without-keys"}, {b.Client, kept, "keep-sealed"}} {
		cfg := fast(c.name)
		cfg.AlwaysValidate = true
		cfg.KeepSealed = c.name == "keep-sealed"
		sub, err := c.client.Subscribe(ctx, cfg, c.rec.handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Stop)
	}
	bustest.WaitFor(t, 10*time.Second, "the consumers", func() bool { return withKeys.count() == 1 && without.count() == 1 && kept.count() == 1 })
	if got := string(kept.got[0].Event.Data()); strings.Contains(got, "13800138") || !strings.Contains(got, `"index"`) {
		t.Fatalf("the KeepSealed consumer got %s", got)
	}
	if got := string(withKeys.got[0].Event.Data()); !strings.Contains(got, `"value":"`+phone+`"`) || strings.Contains(got, "index") {
		t.Fatalf("the consumer with the keys got %s", got)
	}
	if got := string(without.got[0].Event.Data()); strings.Contains(got, "13800138") || !strings.Contains(got, `"masked":"+86 138****8011"`) {
		t.Fatalf("the consumer without the keys got %s", got)
	}
	// A replay by a client with the keys opens; one without does not.
	for _, c := range []struct {
		client *bus.Client
		clear  bool
	}{{b.Client, true}, {b.Connect(t), false}} {
		var got string
		if err := c.client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamIn}, func(d bus.Delivery, err error) error {
			if err != nil {
				return err
			}
			got = string(d.Event.Data())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, phone) != c.clear {
			t.Fatalf("replay (keys: %v) got %s", c.clear, got)
		}
	}
	// A client with another keyset cannot open it: the message is dead-lettered for that
	// consumer, sealed as it was.
	other, _ := pii.NewKeys()
	wrong := b.Connect(t, bus.WithDataProtector(pii.NewEvents(other)))
	cfg := fast("wrong-keys")
	rec := newRecorder()
	sub, err := wrong.Subscribe(ctx, cfg, rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	bustest.WaitFor(t, 10*time.Second, "the dead letter", func() bool { return b.StoredCount(t, bus.StreamDLQ, bus.SubjectDLQ("wrong-keys")) == 1 })
	if rec.count() != 0 {
		t.Fatal("a handler ran on an event its keys do not open")
	}
	if dl := b.Events(t, bus.StreamDLQ, bus.SubjectDLQ("wrong-keys")); bytes.Contains(dl[0].Data(), []byte("13800138")) {
		t.Fatal("the dead letter holds the clear phone")
	}
}

// grepDir returns the first file under dir that contains s, or "" (after checking that dir holds
// stream files: an empty dir would prove nothing).
func grepDir(t *testing.T, dir, s string) string {
	t.Helper()
	if blocks, _ := filepath.Glob(filepath.Join(dir, "*", "streams", "OMNI_IN", "msgs", "*.blk")); len(blocks) == 0 {
		t.Fatalf("no OMNI_IN message blocks under %q", dir)
	}
	var hit string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || hit != "" {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			hit = p
		}
		return nil
	})
	return hit
}
