package weibo_test

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
	at := time.Now().Add(-time.Second).Format(wire.CreatedAtLayout)
	b.ResetTimer()
	connectortest.Measure(b, workers, "push", func(n int64) error {
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
	connectortest.Measure(b, workers, "bare", func(n int64) error {
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
