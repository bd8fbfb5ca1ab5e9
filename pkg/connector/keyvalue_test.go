package connector_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
)

func TestKeyValue(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	cursor := jetstream.KeyValueConfig{Bucket: "t_cursor", Description: "t: cursors", History: 1, TTL: time.Hour}

	t.Run("declared once, the same handle after", func(t *testing.T) {
		t.Parallel()
		rt := &connector.Runtime{Spec: connector.Spec{Name: "t"}, Bus: b.Client, Log: slog.New(slog.DiscardHandler)}
		kv, err := rt.KeyValue(ctx, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		again, err := rt.KeyValue(ctx, cursor)
		if err != nil || again != kv {
			t.Fatalf("second declaration: %v, same handle %v", err, again == kv)
		}
		st, err := b.Client.JetStream().Stream(ctx, "KV_t_cursor")
		if err != nil {
			t.Fatal(err)
		}
		if c := st.CachedInfo().Config; c.Storage != jetstream.FileStorage || c.MaxAge != time.Hour {
			t.Fatalf("bucket stream: storage %s, max age %s", c.Storage, c.MaxAge)
		}
	})
	t.Run("declared again differently", func(t *testing.T) {
		t.Parallel()
		rt := &connector.Runtime{Spec: connector.Spec{Name: "t"}, Bus: b.Client, Log: slog.New(slog.DiscardHandler)}
		c := cursor
		c.Bucket = "t_other"
		if _, err := rt.KeyValue(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.History = 5
		if _, err := rt.KeyValue(ctx, c); !errors.Is(err, connector.ErrInvalidBucket) {
			t.Fatalf("got %v, want ErrInvalidBucket", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			rt   *connector.Runtime
			cfg  jetstream.KeyValueConfig
		}{
			{"no name", &connector.Runtime{Spec: connector.Spec{Name: "t"}, Bus: b.Client}, jetstream.KeyValueConfig{}},
			{"no bus", &connector.Runtime{Spec: connector.Spec{Name: "t"}}, cursor},
		}
		for _, tt := range tests {
			if _, err := tt.rt.KeyValue(ctx, tt.cfg); !errors.Is(err, connector.ErrInvalidBucket) {
				t.Errorf("%s: got %v, want ErrInvalidBucket", tt.name, err)
			}
		}
	})
}
