package faultload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredCount returns how many messages stream holds on subjects matching filter: one stream
// info request, no message read.
func StoredCount(ctx context.Context, js jetstream.JetStream, stream, filter string) (uint64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", stream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", stream, err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// Scan calls fn with every message stream holds on subjects matching filter, oldest first,
// through an ephemeral consumer it deletes afterwards. With headersOnly the messages come
// without their data.
func Scan(ctx context.Context, js jetstream.JetStream, stream, filter string, headersOnly bool, fn func(jetstream.Msg)) error {
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		FilterSubjects: []string{filter}, AckPolicy: jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		HeadersOnly: headersOnly, InactiveThreshold: time.Minute, MemoryStorage: true,
	})
	if err != nil {
		return fmt.Errorf("scan %s %s: %w", stream, filter, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, cons.CachedInfo().Name)
	}()
	want := cons.CachedInfo().NumPending
	var read uint64
	for read < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.Fetch(int(min(want-read, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("scan %s %s: %w (read %d of %d)", stream, filter, err, read, want)
		}
		n := 0
		for m := range batch.Messages() {
			fn(m)
			n++
		}
		read += uint64(n)
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("scan %s %s: %w (read %d of %d)", stream, filter, err, read, want)
		}
		if n == 0 {
			return fmt.Errorf("scan %s %s: no message within 5s (read %d of %d)", stream, filter, read, want)
		}
	}
	return nil
}

// Header returns the first value of header name, matched case-insensitively (the CloudEvents
// NATS binding writes ce-id, ce-type, ... in lower case).
func Header(h nats.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
