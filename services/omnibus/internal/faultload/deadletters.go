package faultload

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// DeadLetterCopies writes to OMNI_DLQ, for each of the last n messages of OMNI_IN whose event id
// starts with prefix, the dead letter each durable consumer of OMNI_IN that receives it would
// write had its handler given up on it — the same headers and message id as the bus writes —
// so that a redrive has something to hand back when the faults left nothing in the DLQ. The
// messages were processed already: handed back, they must change nothing (no OMNI_IN copy, no
// second desk event). It returns how many letters it wrote, for how many messages.
func DeadLetterCopies(ctx context.Context, js jetstream.JetStream, prefix string, n int) (letters, messages int, err error) {
	st, err := js.Stream(ctx, bus.StreamIn)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", bus.StreamIn, err)
	}
	var consumers []*jetstream.ConsumerInfo
	for ci := range st.ListConsumers(ctx).Info() {
		if ci.Config.Durable != "" {
			consumers = append(consumers, ci)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", bus.StreamIn, err)
	}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && messages < n && info.State.LastSeq-seq < 10_000; seq-- {
		m, err := st.GetMsg(ctx, seq)
		if err != nil || !strings.HasPrefix(m.Header.Get("ce-id"), prefix) {
			continue
		}
		wrote := false
		for _, ci := range consumers {
			if !receives(ci.Config, m.Subject) {
				continue
			}
			service, _, _ := strings.Cut(ci.Config.Durable, "-")
			h := make(nats.Header, len(m.Header)+8)
			for k, v := range m.Header {
				h[k] = v
			}
			h.Set(bus.HeaderDLQReason, "fault suite: a copy of the dead letter this consumer would write")
			h.Set(bus.HeaderDLQSubject, m.Subject)
			h.Set(bus.HeaderDLQConsumer, ci.Config.Durable)
			h.Set(bus.HeaderDLQDeliveries, "5")
			h.Set(bus.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
			h.Set(bus.HeaderDLQStream, bus.StreamIn)
			h.Set(bus.HeaderDLQSequence, strconv.FormatUint(seq, 10))
			h.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq:%s:%s:%d", ci.Config.Durable, bus.StreamIn, seq))
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.SubjectDLQ(service), Header: h, Data: m.Data}); err != nil {
				return letters, messages, fmt.Errorf("dead letter of %s for %s: %w", m.Header.Get("ce-id"), ci.Config.Durable, err)
			}
			letters++
			wrote = true
		}
		if wrote {
			messages++
		}
	}
	return letters, messages, nil
}

// receives reports whether a consumer with cfg is delivered messages on subject.
func receives(cfg jetstream.ConsumerConfig, subject string) bool {
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = append(filters, cfg.FilterSubject)
	}
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if bus.SubjectMatches(f, subject) {
			return true
		}
	}
	return false
}
