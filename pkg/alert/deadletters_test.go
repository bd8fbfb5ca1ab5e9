package alert_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

type dlqBundle struct {
	bus  *bustest.Bundle
	seq  atomic.Int64
	opts alert.DeadLetterOptions
}

// deadLetter puts one message on omni.dlq.<service>, as a consumer giving up on it would.
func (b *dlqBundle) deadLetter(t *testing.T, service string) {
	t.Helper()
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq-test-%d", b.seq.Add(1)))
	h.Set(bus.HeaderDLQReason, "test: handler failed")
	if _, err := b.bus.Client.JetStream().PublishMsg(context.Background(),
		&nats.Msg{Subject: "omni.dlq." + service, Header: h, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
}

// empty deletes every message of omni.dlq.<service>.
func (b *dlqBundle) empty(t *testing.T, service string) {
	t.Helper()
	st, err := b.bus.Client.JetStream().Stream(context.Background(), bus.StreamDLQ)
	if err == nil {
		err = st.Purge(context.Background(), jetstream.WithPurgeSubject("omni.dlq."+service))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// watch starts a watcher (a process of the watching service) until the test ends.
func (b *dlqBundle) watch(t *testing.T) *alert.DeadLetterWatcher {
	t.Helper()
	w, err := alert.WatchDeadLetters(context.Background(), b.bus.Client, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

type dlqAlert struct {
	AlertID    string     `json:"alert_id"`
	Kind       string     `json:"kind"`
	Service    string     `json:"service"`
	Subject    string     `json:"subject"`
	Messages   int        `json:"messages"`
	Summary    string     `json:"summary"`
	RaisedAt   time.Time  `json:"raised_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

// alerts returns the alert events stored in OMNI_OPS of a type, decoded.
func (b *dlqBundle) alerts(t *testing.T, typ string) []dlqAlert {
	t.Helper()
	var out []dlqAlert
	for _, e := range b.bus.Events(t, bus.StreamOps, typ) {
		var a dlqAlert
		if err := event.DecodeData(e, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func setupDLQ(t *testing.T) *dlqBundle {
	t.Helper()
	return &dlqBundle{bus: bustest.New(t, bus.WithLogger(quiet())), opts: alert.DeadLetterOptions{Interval: 20 * time.Millisecond, Log: quiet()}}
}

func TestDeadLettersRaiseOneAlertUntilEmpty(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	w := b.watch(t)
	b.watch(t) // a second replica of the watching service: they raise one alert between them
	b.deadLetter(t, "sms")
	bustest.WaitFor(t, 10*time.Second, "the dead_letters alert", func() bool { return len(b.alerts(t, alert.TypeRaised)) == 1 })
	raised := b.alerts(t, alert.TypeRaised)[0]
	if raised.Kind != alert.KindDeadLetters || raised.Service != "sms" || raised.Subject != "omni.dlq.sms" || raised.Messages != 1 ||
		!strings.Contains(raised.Summary, "omnibus dlq list --service sms") || !strings.Contains(raised.Summary, "omnibus dlq redrive --service sms") {
		t.Fatalf("raised %+v", raised)
	}
	if evs := b.bus.Events(t, bus.StreamOps, alert.TypeRaised); evs[0].Source() != "/services/audit" || evs[0].Subject() != "omni.dlq.sms" {
		t.Fatalf("source %q, subject %q", evs[0].Source(), evs[0].Subject())
	}

	// More dead letters, and a restart: still one alert.
	b.deadLetter(t, "sms")
	time.Sleep(100 * time.Millisecond)
	w.Stop()
	b.watch(t)
	time.Sleep(200 * time.Millisecond)
	if n := len(b.alerts(t, alert.TypeRaised)); n != 1 {
		t.Fatalf("%d alerts raised, want 1", n)
	}

	// Emptied (redriven or deleted): resolved once, with the alert's id.
	b.empty(t, "sms")
	bustest.WaitFor(t, 10*time.Second, "the alert resolved", func() bool { return len(b.alerts(t, alert.TypeResolved)) == 1 })
	time.Sleep(100 * time.Millisecond)
	resolved := b.alerts(t, alert.TypeResolved)
	if len(resolved) != 1 || resolved[0].AlertID != raised.AlertID || resolved[0].Messages != 0 || resolved[0].ResolvedAt == nil ||
		!resolved[0].RaisedAt.Equal(raised.RaisedAt) {
		t.Fatalf("resolved %+v, want one resolve of %+v", resolved, raised)
	}

	// A new dead letter is a new episode.
	b.deadLetter(t, "sms")
	bustest.WaitFor(t, 10*time.Second, "a second alert", func() bool { return len(b.alerts(t, alert.TypeRaised)) == 2 })
	if second := b.alerts(t, alert.TypeRaised)[1]; second.AlertID == raised.AlertID {
		t.Fatal("the new episode reuses the old alert id")
	}
}

func TestDeadLetterWatcherResolvesAfterRestart(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	w := b.watch(t)
	b.deadLetter(t, "unifier")
	b.deadLetter(t, "audit")
	bustest.WaitFor(t, 10*time.Second, "two alerts", func() bool { return len(b.alerts(t, alert.TypeRaised)) == 2 })
	w.Stop()
	b.empty(t, "unifier") // emptied while no watcher runs

	ctx, cancel := context.WithCancel(context.Background())
	w, err := alert.WatchDeadLetters(ctx, b.bus.Client, b.opts)
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "the unifier alert resolved", func() bool { return len(b.alerts(t, alert.TypeResolved)) == 1 })
	if r := b.alerts(t, alert.TypeResolved)[0]; r.Service != "unifier" {
		t.Fatalf("resolved %+v, want the unifier's alert", r)
	}
	cancel() // the watcher stops with its context
	select {
	case <-w.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not stop with its context")
	}
}

func TestDeadLetterOptionsValidate(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	_, err := alert.WatchDeadLetters(context.Background(), b.bus.Client, alert.DeadLetterOptions{Interval: time.Millisecond})
	if !errors.Is(err, alert.ErrInvalidOptions) {
		t.Fatalf("Interval 1ms: %v, want ErrInvalidOptions", err)
	}
}
