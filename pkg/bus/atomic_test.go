package bus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

const (
	typeLookup = "omni.tool.crm.lookup.requested"
	subjLookup = "omni.tool.crm.lookup.requested"
)

func lookup(t testing.TB, i int) event.Event {
	t.Helper()
	data := fmt.Sprintf(`{"customer_id":"8a2e4c6d-1f3b-5a7c-8e9d-0b1c2d3e%04d","query":{"kind":"email","value":"c%d@example.cn"}}`, i%10000, i)
	e, err := event.New(typeLookup, "/services/unifier", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPublishAtomic: a batch across two streams, longer than one atomic batch, is stored once
// and in order in each stream; an invalid event fails alone; publishing the same batch again (a
// retry after a lost ack) is refused as atomic batches and stores nothing twice.
func TestPublishAtomic(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var batch []bus.Outgoing
	for i := range 1500 { // 1,500 inbound: two atomic batches on OMNI_IN
		batch = append(batch, bus.Outgoing{Subject: subjIn, Event: received(t, i)})
	}
	for i := range 300 { // then a run on OMNI_TOOL
		batch = append(batch, bus.Outgoing{Subject: subjLookup, Event: lookup(t, i)})
	}
	for i := 1500; i < 1700; i++ { // and OMNI_IN again
		batch = append(batch, bus.Outgoing{Subject: subjIn, Event: received(t, i)})
	}
	bad, _ := event.New(typeReceived, "/x", map[string]any{})
	batch = slices.Insert(batch, 700, bus.Outgoing{Subject: subjIn, Event: bad})

	check := func(round int, err error) {
		t.Helper()
		var berr *bus.BatchError
		if !errors.Is(err, schema.ErrInvalid) || !errors.As(err, &berr) {
			t.Fatalf("round %d: want the invalid event reported, got %v", round, err)
		}
		if got := slices.Sorted(maps.Keys(berr.Failed)); !slices.Equal(got, []int{700}) {
			t.Fatalf("round %d: failed indexes %v, want [700]", round, got)
		}
		in := b.Events(t, bus.StreamIn, subjInAll)
		tool := b.Events(t, bus.StreamTool, subjLookup)
		if len(in) != 1700 || len(tool) != 300 {
			t.Fatalf("round %d: stored %d inbound and %d tool events, want 1700 and 300", round, len(in), len(tool))
		}
		// Each stream holds its events in batch order, each once.
		var wantIn, wantTool []string
		for i, o := range batch {
			if i == 700 {
				continue
			}
			if o.Subject == subjIn {
				wantIn = append(wantIn, o.Event.ID())
			} else {
				wantTool = append(wantTool, o.Event.ID())
			}
		}
		for name, pair := range map[string]struct {
			got  []event.Event
			want []string
		}{"OMNI_IN": {in, wantIn}, "OMNI_TOOL": {tool, wantTool}} {
			for i, e := range pair.got {
				if e.ID() != pair.want[i] {
					t.Fatalf("round %d: %s[%d] is %s, want %s", round, name, i, e.ID(), pair.want[i])
				}
			}
		}
	}
	check(1, b.Client.PublishAtomic(ctx, batch))
	// They went out as atomic batches: the first message is the first of a batch.
	st, err := b.Client.JetStream().Stream(ctx, bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Nats-Batch-Id") == "" || m.Header.Get("Nats-Batch-Sequence") != "1" {
		t.Fatalf("first message not stored as part of an atomic batch: headers %v", m.Header)
	}
	check(2, b.Client.PublishAtomic(ctx, batch))
}

// TestPublishAtomicWithoutAtomicStream: a stream that does not allow atomic publish (provisioned
// by an older omnibus, or by hand) still gets every event, one message at a time.
func TestPublishAtomicWithoutAtomicStream(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	js := b.Client.JetStream()
	st, err := js.Stream(ctx, bus.StreamTool)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if err := js.DeleteStream(ctx, bus.StreamTool); err != nil {
		t.Fatal(err)
	}
	cfg.AllowAtomicPublish = false
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	batch := make([]bus.Outgoing, 50)
	for i := range batch {
		batch[i] = bus.Outgoing{Subject: subjLookup, Event: lookup(t, i)}
	}
	if err := b.Client.PublishAtomic(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if n := b.StoredCount(t, bus.StreamTool, subjLookup); n != 50 {
		t.Fatalf("stored %d of 50", n)
	}
}
