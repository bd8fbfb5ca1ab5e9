package weibo_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/weibo"
	"github.com/omnibus-dev/omnibus/services/weibo"
)

// BenchmarkPushes measures the webhook under concurrent single-message pushes (Weibo pushes one
// message per request): pushes/s and the p50/p99 from request to answer (the answer comes once
// JetStream stored the event), against a bare JetStream publish of the same events with the same
// concurrency in the same run. Run: go test -run XXX -bench Pushes -benchtime 5000x ./services/weibo
func BenchmarkPushes(b *testing.B) {
	const workers = 32
	w := newWorld(b)
	w.start(b)
	var seq atomic.Int64
	at := time.Now().Add(-time.Second).Format(wire.CreatedAtLayout)
	measure := func(name string, one func(n int64) error) {
		lat := make([]time.Duration, b.N)
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					t0 := time.Now()
					if err := one(seq.Add(1)); err != nil {
						b.Error(err)
						return
					}
					lat[i] = time.Since(t0)
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		slices.Sort(lat)
		b.ReportMetric(float64(b.N)/el.Seconds(), name+"_msgs/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"_p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, name+"_p99_ms")
	}
	b.ResetTimer()
	measure("push", func(n int64) error {
		p := wire.Push{Type: wire.TypeText, ReceiverID: account, SenderID: 6_000_000_000 + n%5000, CreatedAt: at, Text: "第 " + strconv.FormatInt(n, 10) + " 条"}
		req := signedPush(b, w.hooks.URL, appSecret, time.Now(), strconv.FormatInt(n, 10), pushBody(b, p))
		resp, err := testClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("push answered %d", resp.StatusCode)
		}
		return nil
	})
	measure("bare", func(n int64) error {
		e, err := event.New(weibo.TypeReceived, "/connectors/weibo", map[string]any{"channel": "weibo", "channel_message_id": strconv.FormatInt(n, 10),
			"from": map[string]string{"kind": "weibo_uid", "value": "7000000000"}, "message": map[string]any{"type": "text", "text": "x"},
			"sent_at": time.Now().UTC()}, event.WithID("bench:"+strconv.FormatInt(n, 10)), event.WithPartitionKey("weibo_uid:"+strconv.FormatInt(n%5000, 10)))
		if err != nil {
			return err
		}
		return w.bus.Client.Publish(context.Background(), weibo.SubjectMessage, e)
	})
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, weibo.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
