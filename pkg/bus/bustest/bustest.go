// Package bustest gives tests a real, in-process NATS JetStream server with the omnibus streams
// provisioned, and helpers to read what was published. It is an ordinary package so services can
// use it from their tests; production code must not import it.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
)

// Bundle is a running server, a connection and a provisioned bus client.
type Bundle struct {
	Server *natsembed.Server
	Conn   *nats.Conn
	Client *bus.Client
}

// New starts an embedded JetStream server for this test (a few ms), connects a client and
// provisions the omnibus streams. Everything is torn down in t.Cleanup. Sync "always" is
// skipped in tests for speed: durability across power loss is not what tests check.
func New(t testing.TB, opts ...bus.Option) *Bundle {
	t.Helper()
	return NewSynced(t, "2m", opts...)
}

// NewSynced is New with the server's JetStream sync setting: "always" (every write fsynced, as
// the all-in-one runs) or an interval such as "2m". Benchmarks of the fsync-bound path use it.
func NewSynced(t testing.TB, sync string, opts ...bus.Option) *Bundle {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Sync: sync})
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatalf("bustest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	c, err := bus.Connect(nc, opts...)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Provision(ctx); err != nil {
		t.Fatalf("bustest: %v", err)
	}
	return &Bundle{Server: srv, Conn: nc, Client: c}
}

// Connect opens another client on the same server (another "process" of a test).
func (b *Bundle) Connect(t testing.TB, opts ...bus.Option) *bus.Client {
	t.Helper()
	nc, err := b.Server.Connect(t.Name())
	if err != nil {
		t.Fatalf("bustest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	c, err := bus.Connect(nc, opts...)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	return c
}

// StoredCount returns how many messages stream holds on subjects matching filter.
func (b *Bundle) StoredCount(t testing.TB, stream, filter string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.Client.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// Events reads every event stored in stream on subjects matching filter, oldest first, without
// creating a durable consumer.
func (b *Bundle) Events(t testing.TB, stream, filter string) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := b.StoredCount(t, stream, filter)
	if want == 0 {
		return nil
	}
	// Tests poll with Events: each call reads through its own ephemeral consumer and deletes it
	// (an ordered consumer would linger 5 minutes, and hundreds of polls reach the server's limit).
	js := b.Client.JetStream()
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{FilterSubjects: []string{filter},
		AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 10 * time.Second})
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	defer func() { _ = js.DeleteConsumer(context.WithoutCancel(ctx), stream, cons.CachedInfo().Name) }()
	var out []event.Event
	for uint64(len(out)) < want {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("bustest: read %s %s: %v (got %d of %d)", stream, filter, err, len(out), want)
		}
		e, err := event.Decode(m.Headers(), m.Data())
		if err != nil {
			t.Fatalf("bustest: stored message %s is not a CloudEvent: %v", m.Subject(), err)
		}
		out = append(out, e)
	}
	return out
}

// WaitFor polls cond every 10ms until it holds or the timeout passes, then fails the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
