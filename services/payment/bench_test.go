package payment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/services/payment"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// answers delivers each link answer's type by its request id.
type answers struct {
	mu   sync.Mutex
	wait map[string]chan string
}

func watchAnswers(b *testing.B, tb *testBundle) *answers {
	a := &answers{wait: map[string]chan string{}}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	cons, err := tb.bus.Client.JetStream().OrderedConsumer(ctx, bus.StreamTool, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{payment.TypeCompleted, payment.TypeFailed}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		id := m.Headers().Get("ce-correlationid")
		a.mu.Lock()
		ch := a.wait[id]
		a.mu.Unlock()
		if ch != nil {
			ch <- m.Subject()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	return a
}

// roundTrip publishes a link request and waits for its answer.
func (a *answers) roundTrip(b *testing.B, tb *testBundle, n int) (time.Duration, bool) {
	req := linkRequest(b, n, "", "99.00")
	ch := make(chan string, 1)
	a.mu.Lock()
	a.wait[req.ID()] = ch
	a.mu.Unlock()
	start := time.Now()
	if err := tb.bus.Client.Publish(context.Background(), payment.TypeRequested, req); err != nil {
		b.Error(err)
		return 0, false
	}
	select {
	case subj := <-ch:
		return time.Since(start), subj == payment.TypeCompleted
	case <-time.After(10 * time.Second):
		b.Errorf("request %d: no answer", n)
		return 0, false
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// BenchmarkLinkRoundTrip: request → precreate (signed, answer verified) → completed, one at a
// time, with the sandbox at 10 ms latency. Reports p50/p99 of the round trips.
func BenchmarkLinkRoundTrip(b *testing.B) {
	tb := setup(b, -1, map[string]string{"PAYMENT_SWEEP": "0"})
	if err := tb.env.SetFault("alipay gateway.do", sim.Fault{Latency: 10 * time.Millisecond}); err != nil {
		b.Fatal(err)
	}
	a := watchAnswers(b, tb)
	var ds []time.Duration
	n := 0
	for b.Loop() {
		n++
		if d, ok := a.roundTrip(b, tb, n); ok {
			ds = append(ds, d)
		}
	}
	if len(ds) > 0 {
		b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkLinks100PerSecond: 100 link requests a second for 3 s, the sandbox at 10 ms latency
// and, with errors, 20 % of its answers failing (20000 isp.unknow-error, retried). Reports p50/p99
// and the share answered .failed. Run with -benchtime 1x.
func BenchmarkLinks100PerSecond(b *testing.B) {
	for _, errs := range []float64{0, 0.2} {
		b.Run(fmt.Sprintf("errors=%.0f%%", errs*100), func(b *testing.B) {
			tb := setup(b, -1, map[string]string{"PAYMENT_SWEEP": "0"})
			if err := tb.env.SetFault("alipay gateway.do", sim.Fault{Latency: 10 * time.Millisecond, ErrorRatio: errs}); err != nil {
				b.Fatal(err)
			}
			a := watchAnswers(b, tb)
			for b.Loop() {
				var mu sync.Mutex
				var ds []time.Duration
				failed := 0
				var wg sync.WaitGroup
				tick := time.NewTicker(10 * time.Millisecond)
				for i := range 300 {
					<-tick.C
					wg.Go(func() {
						d, ok := a.roundTrip(b, tb, 1000*b.N+i)
						mu.Lock()
						defer mu.Unlock()
						if ok {
							ds = append(ds, d)
						} else {
							failed++
						}
					})
				}
				tick.Stop()
				wg.Wait()
				if len(ds) > 0 {
					b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
				}
				b.ReportMetric(float64(failed)/3, "failed-%")
				codes := map[string]int{}
				for _, e := range tb.bus.Events(b, bus.StreamTool, payment.TypeFailed) {
					var f struct {
						ErrorCode string `json:"error_code"`
						Error     string `json:"error"`
					}
					_ = json.Unmarshal(e.Data(), &f)
					codes[f.ErrorCode+": "+f.Error]++
				}
				if len(codes) > 0 {
					b.Logf("failed: %v", codes)
				}
			}
		})
	}
}
