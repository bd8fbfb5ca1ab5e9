package bus_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

func TestStreamOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, stream string
	}{
		{"inbound", "omni.in.wechatkf.message.p3", bus.StreamIn},
		{"outbound pattern", "omni.out.sms.>", bus.StreamOut},
		{"tool", "omni.tool.crm.lookup.request", bus.StreamTool},
		{"desk", "omni.desk.conversation.updated", bus.StreamDesk},
		{"audit", "omni.audit.crm", bus.StreamAudit},
		{"dead letters", bus.SubjectDLQ("crm"), bus.StreamDLQ},
		{"ops", "omni.ops.alert.raised", bus.StreamOps},
		{"redrive", "omni.redrive.crm-lookup", bus.StreamRedrive},
		{"no stream", "elsewhere.x", ""},
		{"a prefix without its dot", "omni.inbox", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := bus.StreamOf(tt.subject)
			if got != tt.stream || ok != (tt.stream != "") {
				t.Fatalf("StreamOf(%q) = %q, %v; want %q", tt.subject, got, ok, tt.stream)
			}
		})
	}
	// Every stream's subjects map back to it: there is no second table to fall out of step.
	for _, sc := range bus.Streams(bus.StreamsConfig{}) {
		for _, subj := range sc.Subjects {
			if got, _ := bus.StreamOf(subj); got != sc.Name {
				t.Errorf("StreamOf(%q) = %q, want %s", subj, got, sc.Name)
			}
		}
	}
}

// An operator's edit of a stream survives every service's start: what configuration leaves
// unset, Provision leaves as the server has it; what configuration sets, it applies — a shorter
// retention too, with a warning — and omnibus's own definition (subjects) is restored.
func TestProvisionKeepsOperatorEdits(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	js := b.Client.JetStream()
	info := func(name string) jetstream.StreamConfig {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}
	desk := info(bus.StreamDesk)
	if desk.MaxAge != 7*24*time.Hour || desk.MaxBytes != -1 {
		t.Fatalf("OMNI_DESK created with %s / %d", desk.MaxAge, desk.MaxBytes)
	}
	// nats stream edit OMNI_DESK --max-age 14d, and a subject someone added by hand.
	desk.MaxAge = 14 * 24 * time.Hour
	desk.Subjects = append(desk.Subjects, "stray.>")
	if _, err := js.UpdateStream(ctx, desk); err != nil {
		t.Fatal(err)
	}
	restart := func(opts ...bus.Option) {
		t.Helper()
		c := b.Connect(t, append([]bus.Option{bus.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
		if err := c.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restart()
	if got := info(bus.StreamDesk); got.MaxAge != 14*24*time.Hour || len(got.Subjects) != 1 || got.Subjects[0] != "omni.desk.>" {
		t.Fatalf("after a restart OMNI_DESK has max age %s, subjects %v; want the operator's 14d and omnibus's subjects", got.MaxAge, got.Subjects)
	}
	cfg, err := bus.StreamsEnv{MaxAge: "OMNI_DESK=10d,OMNI_IN=60d", MaxBytes: "OMNI_AUDIT=2GB"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	restart(bus.WithStreams(cfg))
	if got := info(bus.StreamDesk); got.MaxAge != 10*24*time.Hour {
		t.Fatalf("configured 10d, OMNI_DESK has %s", got.MaxAge)
	}
	if got := info(bus.StreamIn); got.MaxAge != 60*24*time.Hour {
		t.Fatalf("configured 60d, OMNI_IN has %s", got.MaxAge)
	}
	if got := info(bus.StreamAudit); got.MaxBytes != 2<<30 || got.MaxAge != 180*24*time.Hour {
		t.Fatalf("OMNI_AUDIT: %d bytes, %s", got.MaxBytes, got.MaxAge)
	}
}

func TestStreamsEnv(t *testing.T) {
	t.Parallel()
	c, err := bus.StreamsEnv{Replicas: 3, Storage: "memory", MaxAge: " omni_desk = 36h , OMNI_OPS=0", MaxBytes: "OMNI_IN=50GB,OMNI_DLQ=1024"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Replicas != 3 || c.Storage != jetstream.MemoryStorage || c.MaxAge[bus.StreamDesk] != 36*time.Hour || c.MaxAge[bus.StreamOps] != 0 ||
		c.MaxBytes[bus.StreamIn] != 50<<30 || c.MaxBytes[bus.StreamDLQ] != 1024 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []bus.StreamsEnv{
		{MaxAge: "OMNI_NOPE=1d"}, {MaxAge: "OMNI_IN"}, {MaxAge: "OMNI_IN=soon"}, {MaxBytes: "OMNI_IN=-1"},
		{Storage: "tape"}, {Replicas: 7},
	} {
		if _, err := bad.Config(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
