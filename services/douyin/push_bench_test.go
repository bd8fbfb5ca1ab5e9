package douyin_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/douyin"
)

// BenchmarkEvents measures the webhook under concurrent single-message events (Douyin posts one
// event per request): events/s and the p50/p99 from request to answer (the answer comes once
// JetStream stored the event), against a bare JetStream publish of the same events with the same
// concurrency in the same run. Run: go test -run XXX -bench Events -benchtime 5000x ./services/douyin
func BenchmarkEvents(b *testing.B) {
	const workers = 32
	w := newWorld(b)
	w.start(b)
	b.ResetTimer()
	connectortest.Measure(b, workers, "event", func(n int64) error {
		user := "_000bench" + strconv.FormatInt(n%5000, 10)
		req := signed(b, w.hooks.URL, clientSecret, w.envelope(b, user, w.sim.Text(user, "第 "+strconv.FormatInt(n, 10)+" 条")))
		resp, err := connectortest.Client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("event answered %d", resp.StatusCode)
		}
		return nil
	})
	connectortest.Measure(b, workers, "bare", func(n int64) error {
		e, err := event.New(douyin.TypeReceived, "/connectors/douyin", map[string]any{"channel": "douyin", "channel_message_id": strconv.FormatInt(n, 10),
			"from": map[string]string{"kind": "douyin_openid", "value": "_000bare"}, "message": map[string]any{"type": "text", "text": "x"},
			"sent_at": time.Now().UTC()}, event.WithID("bench:"+strconv.FormatInt(n, 10)), event.WithPartitionKey("douyin_openid:_000bare"+strconv.FormatInt(n%5000, 10)))
		if err != nil {
			return err
		}
		return w.bus.Client.Publish(context.Background(), douyin.SubjectMessage, e)
	})
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, douyin.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
