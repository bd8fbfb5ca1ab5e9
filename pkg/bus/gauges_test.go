package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// gauges collects the client's gauges: name → attribute value (consumer or service) → value.
func gauges(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[int64])
			if !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				k, ok := dp.Attributes.Value("messaging.consumer.group.name")
				if !ok {
					k, _ = dp.Attributes.Value("omnibus.service")
				}
				if out[m.Name] == nil {
					out[m.Name] = map[string]int64{}
				}
				out[m.Name][k.AsString()] = dp.Value
			}
		}
	}
	return out
}

// A consumer's lag and unacknowledged messages, and the dead letters by service, are gauges
// read from the server at collection; a stopped consumer is no longer reported.
func TestGauges(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	b := bustest.New(t, bus.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	ctx := context.Background()
	for i := range 5 {
		if err := b.Client.Publish(ctx, subjIn, received(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	cfg := fast("gauged")
	cfg.Durable, cfg.Concurrency, cfg.MaxAckPending = "gauged", 1, 1
	sub, err := b.Client.Subscribe(ctx, cfg, func(_ context.Context, d bus.Delivery) error {
		<-release
		return bus.Permanent(errors.New("refused for the gauge test: " + d.Event.ID()))
	})
	if err != nil {
		t.Fatal(err)
	}
	// One message in the handler, four waiting behind MaxAckPending.
	bustest.WaitFor(t, 5*time.Second, "the consumer's gauges", func() bool {
		g := gauges(t, reader)
		return g["omnibus.bus.consumer.ack_pending"][cfg.Durable] == 1 && g["omnibus.bus.consumer.pending"][cfg.Durable] == 4
	})
	close(release)
	bustest.WaitFor(t, 10*time.Second, "five dead letters by gauged", func() bool {
		return gauges(t, reader)["omnibus.bus.dlq.messages"]["gauged"] == 5
	})
	sub.Stop()
	<-sub.Closed()
	if g := gauges(t, reader); len(g["omnibus.bus.consumer.pending"]) != 0 {
		t.Fatalf("a stopped consumer is still reported: %v", g["omnibus.bus.consumer.pending"])
	}
}
