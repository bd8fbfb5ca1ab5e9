package bus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

const (
	subjSMS = "omni.in.sms.message"
	// Publish may append a partition token to inbound subjects: filters and checks allow for it.
	filterSMS = "omni.in.sms.>"
)

// publishN publishes n events one at a time (each acked, so stored timestamps strictly increase);
// event i goes to subjSMS when sms(i), else subjIn. It returns the ids in publish order.
func publishN(t testing.TB, b *bustest.Bundle, n int, sms func(i int) bool) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		e := received(t, i)
		subj := subjIn
		if sms != nil && sms(i) {
			subj = subjSMS
		}
		if err := b.Client.Publish(ctx, subj, e); err != nil {
			t.Fatal(err)
		}
		ids[i] = e.ID()
	}
	return ids
}

type replayed struct {
	d      bus.Delivery
	decErr error
}

func replay(t testing.TB, c *bus.Client, o bus.ReplayOptions) []replayed {
	t.Helper()
	var got []replayed
	if err := c.Replay(context.Background(), o, func(d bus.Delivery, decErr error) error {
		got = append(got, replayed{d, decErr})
		return nil
	}); err != nil {
		t.Fatalf("replay %+v: %v", o, err)
	}
	return got
}

func seqs(got []replayed) []uint64 {
	out := make([]uint64, len(got))
	for i, r := range got {
		out[i] = r.d.StreamSeq
	}
	return out
}

func seqRange(lo, hi uint64) []uint64 {
	var out []uint64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

// assertNoConsumers checks Replay left no consumer behind on stream.
func assertNoConsumers(t testing.TB, b *bustest.Bundle, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Client.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		var names []string
		for n := range st.ConsumerNames(ctx).Name() {
			names = append(names, n)
		}
		t.Errorf("%s has %d consumer(s) left after Replay: %v", stream, info.State.Consumers, names)
	}
}

func TestReplayWholeStream(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ids := publishN(t, b, 25, func(i int) bool { return i%3 == 0 })
	start := time.Now()
	got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn})
	if len(got) != len(ids) {
		t.Fatalf("replayed %d events, want %d", len(got), len(ids))
	}
	var prev time.Time
	for i, r := range got {
		wantSubj := subjIn
		if i%3 == 0 {
			wantSubj = subjSMS
		}
		switch {
		case r.decErr != nil:
			t.Errorf("event %d: decode error %v", i, r.decErr)
		case r.d.Event.ID() != ids[i]:
			t.Errorf("event %d: id %s, want %s (out of order?)", i, r.d.Event.ID(), ids[i])
		case r.d.StreamSeq != uint64(i+1) || r.d.Stream != bus.StreamIn || !strings.HasPrefix(r.d.Subject, wantSubj) || r.d.NumDelivered != 1:
			t.Errorf("event %d: delivery %+v", i, r.d)
		case r.d.Published.Before(prev) || r.d.Published.After(start):
			t.Errorf("event %d: published %s (previous %s, replay started %s)", i, r.d.Published, prev, start)
		case r.d.Event.Type() != typeReceived || r.d.Event.DataSchema() == "":
			t.Errorf("event %d: attributes lost: %s", i, r.d.Event)
		}
		prev = r.d.Published
	}
	assertNoConsumers(t, b, bus.StreamIn)
	// Replay is read-only: a second one sees the same.
	if again := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn}); !slices.Equal(seqs(again), seqs(got)) {
		t.Errorf("second replay: %v", seqs(again))
	}
}

func TestReplaySubjectFilter(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 20, func(i int) bool { return i%4 == 1 })
	got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Subjects: []string{filterSMS}})
	if want := []uint64{2, 6, 10, 14, 18}; !slices.Equal(seqs(got), want) {
		t.Fatalf("sms replay: seqs %v, want %v", seqs(got), want)
	}
	for _, r := range got {
		if !strings.HasPrefix(r.d.Subject, subjSMS) {
			t.Errorf("seq %d on %s", r.d.StreamSeq, r.d.Subject)
		}
	}
	// Several filters.
	got = replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Subjects: []string{filterSMS, "omni.in.example.>"}})
	if !slices.Equal(seqs(got), seqRange(1, 20)) {
		t.Fatalf("two filters: %v", seqs(got))
	}
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Subjects: []string{"omni.in.nothing.>"}}); len(got) != 0 {
		t.Fatalf("filter matching nothing: %v", seqs(got))
	}
}

func TestReplaySeqRange(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 15, func(i int) bool { return i%2 == 0 })
	for _, tc := range []struct {
		name string
		o    bus.ReplayOptions
		want []uint64
	}{
		{"middle", bus.ReplayOptions{StartSeq: 5, EndSeq: 9}, seqRange(5, 9)},
		{"single", bus.ReplayOptions{StartSeq: 7, EndSeq: 7}, []uint64{7}},
		{"from", bus.ReplayOptions{StartSeq: 12}, seqRange(12, 15)},
		{"to", bus.ReplayOptions{EndSeq: 3}, seqRange(1, 3)},
		{"to beyond the end", bus.ReplayOptions{StartSeq: 14, EndSeq: 1000}, seqRange(14, 15)},
		{"from beyond the end", bus.ReplayOptions{StartSeq: 16}, nil},
		// seq 1..15: odd seqs (even i) are sms. In 4..10 that is 5, 7, 9.
		{"range and filter", bus.ReplayOptions{StartSeq: 4, EndSeq: 10, Subjects: []string{filterSMS}}, []uint64{5, 7, 9}},
		// The range ends on a message the filter excludes, with more matching ones after it.
		{"range ends off filter", bus.ReplayOptions{StartSeq: 1, EndSeq: 4, Subjects: []string{filterSMS}}, []uint64{1, 3}},
	} {
		tc.o.Stream = bus.StreamIn
		start := time.Now()
		got := replay(t, b.Client, tc.o)
		if !slices.Equal(seqs(got), tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, seqs(got), tc.want)
		}
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Errorf("%s: took %s: Replay waited for messages instead of knowing the end", tc.name, el)
		}
	}
	assertNoConsumers(t, b, bus.StreamIn)
}

func TestReplayTimeRange(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 10, func(i int) bool { return i >= 5 })
	all := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn})
	ts := func(seq int) time.Time { return all[seq-1].d.Published }
	for i := 1; i < len(all); i++ {
		if !all[i].d.Published.After(all[i-1].d.Published) {
			t.Fatalf("stored timestamps not increasing: %v", all)
		}
	}
	for _, tc := range []struct {
		name string
		o    bus.ReplayOptions
		want []uint64
	}{
		{"inclusive bounds", bus.ReplayOptions{StartTime: ts(4), EndTime: ts(7)}, seqRange(4, 7)},
		{"between stored times", bus.ReplayOptions{StartTime: ts(4).Add(time.Nanosecond), EndTime: ts(7).Add(-time.Nanosecond)}, seqRange(5, 6)},
		{"since", bus.ReplayOptions{StartTime: ts(8)}, seqRange(8, 10)},
		{"until", bus.ReplayOptions{EndTime: ts(2)}, seqRange(1, 2)},
		{"before everything", bus.ReplayOptions{EndTime: ts(1).Add(-time.Second)}, nil},
		{"after everything", bus.ReplayOptions{StartTime: time.Now().Add(time.Hour)}, nil},
		{"time and seq: the later start wins", bus.ReplayOptions{StartTime: ts(3), StartSeq: 5, EndSeq: 8}, seqRange(5, 8)},
		{"time and seq: the later start wins (time)", bus.ReplayOptions{StartTime: ts(6), StartSeq: 2}, seqRange(6, 10)},
		{"time and filter", bus.ReplayOptions{StartTime: ts(3), EndTime: ts(8), Subjects: []string{filterSMS}}, seqRange(6, 8)},
	} {
		tc.o.Stream = bus.StreamIn
		if got := replay(t, b.Client, tc.o); !slices.Equal(seqs(got), tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, seqs(got), tc.want)
		}
	}
}

func TestReplayLimit(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 12, func(i int) bool { return i%2 == 1 })
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Limit: 3}); !slices.Equal(seqs(got), seqRange(1, 3)) {
		t.Errorf("limit 3: %v", seqs(got))
	}
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Limit: 3, StartSeq: 5, Subjects: []string{filterSMS}}); !slices.Equal(seqs(got), []uint64{6, 8, 10}) {
		t.Errorf("limit 3 from 5 on sms: %v", seqs(got))
	}
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Limit: 100}); len(got) != 12 {
		t.Errorf("limit above the count: %d events", len(got))
	}
	assertNoConsumers(t, b, bus.StreamIn)
}

func TestReplayEmptyReturnsPromptly(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start := time.Now()
	for _, stream := range []string{bus.StreamIn, bus.StreamTool, bus.StreamDLQ} {
		if got := replay(t, b.Client, bus.ReplayOptions{Stream: stream}); len(got) != 0 {
			t.Errorf("%s: %d events from an empty stream", stream, len(got))
		}
	}
	// Not empty, but nothing matches.
	publishN(t, b, 3, nil)
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn, Subjects: []string{filterSMS}}); len(got) != 0 {
		t.Errorf("%d events for a filter matching nothing", len(got))
	}
	// Everything was purged: the stream has sequences but no messages.
	st, err := b.Client.JetStream().Stream(context.Background(), bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn}); len(got) != 0 {
		t.Errorf("%d events from a purged stream", len(got))
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("empty replays took %s", el)
	}
}

func TestReplayFuncErrorStops(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 10, nil)
	stop := errors.New("enough")
	calls := 0
	err := b.Client.Replay(context.Background(), bus.ReplayOptions{Stream: bus.StreamIn}, func(d bus.Delivery, _ error) error {
		calls++
		if d.StreamSeq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("err %v after %d calls; want %v after 3", err, calls, stop)
	}
	assertNoConsumers(t, b, bus.StreamIn)
}

func TestReplayContextCancel(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	publishN(t, b, 10, nil)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := b.Client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamIn}, func(bus.Delivery, error) error {
		if calls++; calls == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if err := b.Client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamIn}, func(bus.Delivery, error) error {
		t.Error("called with a cancelled context")
		return nil
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	assertNoConsumers(t, b, bus.StreamIn)
}

func TestReplayReportsUndecodable(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	ids := publishN(t, b, 1, nil)
	for _, m := range []*nats.Msg{
		{Subject: subjIn, Data: []byte("not a cloudevent")},
		{Subject: subjSMS, Header: nats.Header{"content-type": []string{event.ContentTypeStructured}}, Data: []byte(`{"specversion":"1.0"`)},
	} {
		if _, err := b.Client.JetStream().PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ids = append(ids, publishN(t, b, 1, nil)...)
	got := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamIn})
	if !slices.Equal(seqs(got), seqRange(1, 4)) {
		t.Fatalf("seqs %v", seqs(got))
	}
	for _, i := range []int{1, 2} {
		r := got[i]
		if r.decErr == nil || !errors.Is(r.decErr, event.ErrInvalid) {
			t.Errorf("seq %d: decode error %v, want one wrapping event.ErrInvalid", r.d.StreamSeq, r.decErr)
		}
		if r.d.Event.ID() != "" || r.d.Subject == "" || r.d.Stream != bus.StreamIn || r.d.Published.IsZero() {
			t.Errorf("seq %d: delivery %+v", r.d.StreamSeq, r.d)
		}
	}
	if got[0].decErr != nil || got[0].d.Event.ID() != ids[0] || got[3].decErr != nil || got[3].d.Event.ID() != ids[1] {
		t.Errorf("the events around the undecodable messages: %+v / %+v", got[0], got[3])
	}
}

// Replay stops at the last message stored when it started, however fast events keep coming.
func TestReplayDoesNotFollowLiveTraffic(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	const preloaded = 300
	publishN(t, b, preloaded, nil)
	pub := b.Connect(t)
	live := make([]event.Event, 20_000)
	for i := range live {
		live[i] = received(t, preloaded+i)
	}
	var stop atomic.Bool
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		for _, e := range live {
			if stop.Load() {
				break
			}
			if err := pub.Publish(context.Background(), subjIn, e); err != nil {
				done <- err
				return
			}
			published.Add(1)
		}
		done <- nil
	}()
	bustest.WaitFor(t, 5*time.Second, "live traffic", func() bool { return published.Load() > 20 })
	start := time.Now()
	var got []uint64
	err := b.Client.Replay(context.Background(), bus.ReplayOptions{Stream: bus.StreamIn}, func(d bus.Delivery, _ error) error {
		got = append(got, d.StreamSeq)
		time.Sleep(50 * time.Microsecond) // slower than the publisher: following it would never end
		return nil
	})
	elapsed := time.Since(start)
	stillPublishing := !stop.Swap(true)
	if perr := <-done; perr != nil {
		t.Fatal(perr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !stillPublishing || elapsed > 10*time.Second {
		t.Fatalf("replay took %s and outlived the publisher", elapsed)
	}
	if len(got) < preloaded+20 || !slices.Equal(got, seqRange(1, uint64(len(got)))) {
		t.Fatalf("replayed %d events (want at least %d, in order)", len(got), preloaded+20)
	}
	if total := b.StoredCount(t, bus.StreamIn, ">"); uint64(len(got)) >= total {
		t.Fatalf("replayed %d of %d: the publisher stopped before the replay ended", len(got), total)
	}
	t.Logf("replayed %d events in %s while %d more were published", len(got), elapsed, published.Load())
	assertNoConsumers(t, b, bus.StreamIn)
}

// OMNI_OUT is a work queue: no unacknowledged consumer may read it, and its workers' consumer
// must keep its messages. Replay reads it message by message, leaving both alone.
func TestReplayWorkQueue(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	var ids []string
	for i := range 8 {
		subj := "omni.out.example.send"
		if i%2 == 1 {
			subj = "omni.out.sms.send"
		}
		e := received(t, i)
		if err := b.Client.Publish(ctx, subj, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID())
	}
	if _, err := b.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: "omni.out.example.send", Data: []byte("junk")}); err != nil {
		t.Fatal(err)
	}
	// A worker's consumer (it has not pulled yet) and a message it already took: a gap.
	if _, err := b.Client.JetStream().CreateConsumer(ctx, bus.StreamOut, jetstream.ConsumerConfig{
		Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "omni.out.>"}); err != nil {
		t.Fatal(err)
	}
	st, err := b.Client.JetStream().Stream(ctx, bus.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 3); err != nil {
		t.Fatal(err)
	}
	all := replay(t, b.Client, bus.ReplayOptions{Stream: bus.StreamOut})
	if want := []uint64{1, 2, 4, 5, 6, 7, 8, 9}; !slices.Equal(seqs(all), want) {
		t.Fatalf("seqs %v, want %v", seqs(all), want)
	}
	if all[0].d.Event.ID() != ids[0] || all[6].d.Event.ID() != ids[7] || all[0].d.Stream != bus.StreamOut || all[0].d.Published.IsZero() {
		t.Errorf("deliveries: %+v / %+v", all[0].d, all[6].d)
	}
	if last := all[7]; last.decErr == nil || last.d.Subject != "omni.out.example.send" {
		t.Errorf("undecodable message: %+v", last)
	}
	for _, tc := range []struct {
		name string
		o    bus.ReplayOptions
		want []uint64
	}{
		{"one filter", bus.ReplayOptions{Subjects: []string{"omni.out.sms.>"}}, []uint64{2, 4, 6, 8}},
		{"two filters", bus.ReplayOptions{Subjects: []string{"omni.out.sms.send", "omni.out.nothing"}}, []uint64{2, 4, 6, 8}},
		{"seq range", bus.ReplayOptions{StartSeq: 2, EndSeq: 5}, []uint64{2, 4, 5}},
		{"limit", bus.ReplayOptions{StartSeq: 4, Limit: 2, Subjects: []string{"omni.out.example.>"}}, []uint64{5, 7}},
		{"time", bus.ReplayOptions{StartTime: all[2].d.Published, EndTime: all[4].d.Published}, []uint64{4, 5, 6}},
	} {
		tc.o.Stream = bus.StreamOut
		if got := replay(t, b.Client, tc.o); !slices.Equal(seqs(got), tc.want) {
			t.Errorf("%s: seqs %v, want %v", tc.name, seqs(got), tc.want)
		}
	}
	stop := errors.New("stop")
	if err := b.Client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamOut}, func(bus.Delivery, error) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn error: %v", err)
	}
	if n := b.StoredCount(t, bus.StreamOut, ">"); n != 8 {
		t.Errorf("the work queue holds %d messages after the replays, want 8", n)
	}
	names := []string{}
	for n := range st.ConsumerNames(ctx).Name() {
		names = append(names, n)
	}
	if !slices.Equal(names, []string{"worker"}) {
		t.Errorf("consumers: %v", names)
	}
}

func TestReplayInvalid(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	nop := func(bus.Delivery, error) error { return nil }
	ctx := context.Background()
	for _, o := range []bus.ReplayOptions{
		{},
		{Stream: bus.StreamIn, Limit: -1},
		{Stream: bus.StreamIn, StartSeq: 5, EndSeq: 4},
		{Stream: bus.StreamIn, StartTime: time.Now(), EndTime: time.Now().Add(-time.Hour)},
		{Stream: bus.StreamIn, Subjects: []string{""}},
	} {
		if err := b.Client.Replay(ctx, o, nop); !errors.Is(err, bus.ErrInvalidReplay) {
			t.Errorf("%+v: %v, want ErrInvalidReplay", o, err)
		}
	}
	if err := b.Client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamIn}, nil); !errors.Is(err, bus.ErrInvalidReplay) {
		t.Errorf("nil func: %v", err)
	}
	if err := b.Client.Replay(ctx, bus.ReplayOptions{Stream: "OMNI_NOPE"}, nop); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
}

// BenchmarkReplay: 50k events (the bus wire format) are stored first, untimed; each iteration
// replays all of them. raw is the floor: an ordered consumer iterated with jetstream, messages
// not decoded; bus is Replay, decoding every event.
//
//	go test -run '^$' -bench Replay -benchtime 5x ./bus/
//
// BenchmarkReplay reads b.N stored events back in one pass (so -benchtime 20000x means 20,000
// events, like the other benchmarks of this package).
func BenchmarkReplay(b *testing.B) {
	run := func(b *testing.B, replayAll func(bb *bustest.Bundle) int) {
		n := b.N
		bb := benchBundle(b)
		preload(b, bb, n)
		b.ReportAllocs()
		b.ResetTimer()
		b.StartTimer()
		if got := replayAll(bb); got != n {
			b.Fatalf("replayed %d of %d", got, n)
		}
		b.StopTimer()
		if s := b.Elapsed().Seconds(); s > 0 {
			b.ReportMetric(float64(n)/s, "events/s")
		}
	}
	ctx := context.Background()
	b.Run("raw", func(b *testing.B) {
		run(b, func(bb *bustest.Bundle) int {
			cons, err := bb.Client.JetStream().OrderedConsumer(ctx, bus.StreamIn, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages(jetstream.PullMaxMessages(512))
			if err != nil {
				b.Fatal(err)
			}
			defer it.Stop()
			got := 0
			for {
				m, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				meta, err := m.Metadata()
				if err != nil {
					b.Fatal(err)
				}
				if got++; meta.NumPending == 0 {
					return got
				}
			}
		})
	})
	b.Run("bus", func(b *testing.B) {
		run(b, func(bb *bustest.Bundle) int {
			got := 0
			if err := bb.Client.Replay(ctx, bus.ReplayOptions{Stream: bus.StreamIn}, func(d bus.Delivery, decErr error) error {
				if decErr != nil {
					return decErr
				}
				got++
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			return got
		})
	})
}
