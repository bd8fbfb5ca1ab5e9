package bus

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The gauges an operator watches a bus by, read from the server when metrics are collected
// (every scrape of /metrics, every OTLP push), not counted in the process:
//
//   - omnibus.bus.consumer.pending: messages of a durable consumer's stream not delivered yet —
//     its lag — by consumer (messaging.consumer.group.name) and stream;
//   - omnibus.bus.consumer.ack_pending: delivered, not acknowledged yet (in a handler, or lost
//     with a crashed one until AckWait);
//   - omnibus.bus.dlq.messages: dead letters in OMNI_DLQ by the service that wrote them (the
//     omnibus.service attribute; omni.dlq.<service>).
//
// Each client reports the consumers it runs; every client reports the dead letters (a dashboard
// takes the max across processes). A server that does not answer within gaugeTimeout leaves the
// gauges out of that collection.
const gaugeTimeout = 2 * time.Second

var keyService = attribute.Key("omnibus.service")

// consumerSet is the durable consumers a client runs.
type consumerSet struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func (cs *consumerSet) add(s *Subscription) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.subs == nil {
		cs.subs = map[*Subscription]struct{}{}
	}
	cs.subs[s] = struct{}{}
}

func (cs *consumerSet) remove(s *Subscription) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.subs, s)
}

func (cs *consumerSet) list() []ConsumerConfig {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]ConsumerConfig, 0, len(cs.subs))
	for s := range cs.subs {
		out = append(out, s.cfg)
	}
	return out
}

// registerGauges registers the client's observable gauges.
func (c *Client) registerGauges(mp metric.MeterProvider) error {
	m := mp.Meter(instrumentationName)
	pending, err := m.Int64ObservableGauge("omnibus.bus.consumer.pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages of the consumer's stream (matching its filter) not delivered yet: its lag."))
	if err != nil {
		return err
	}
	ackPending, err := m.Int64ObservableGauge("omnibus.bus.consumer.ack_pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered to the consumer and not acknowledged yet."))
	if err != nil {
		return err
	}
	dlq, err := m.Int64ObservableGauge("omnibus.bus.dlq.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Dead letters in OMNI_DLQ by the service that wrote them."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
		defer cancel()
		for _, cfg := range c.consumers.list() {
			cons, err := c.js.Consumer(ctx, cfg.Stream, cfg.Durable) // one CONSUMER.INFO request
			if err != nil {
				continue
			}
			info := cons.CachedInfo() // what that request answered
			attrs := metric.WithAttributes(attrSystem, keyConsumerGroup.String(cfg.Durable), keyDestination.String(cfg.Stream))
			o.ObserveInt64(pending, int64(info.NumPending), attrs)
			o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
		}
		st, err := c.js.Stream(ctx, StreamDLQ)
		if err != nil {
			return nil // no DLQ stream (yet): nothing to report
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("omni.dlq.>"))
		if err != nil {
			return nil
		}
		for subject, n := range info.State.Subjects {
			o.ObserveInt64(dlq, int64(n), metric.WithAttributes(keyService.String(strings.TrimPrefix(subject, "omni.dlq."))))
		}
		return nil
	}, pending, ackPending, dlq)
	return err
}
