package kuaishou_test

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
	"github.com/omnibus-dev/omnibus/services/kuaishou"
)

// BenchmarkEvents measures the webhook under concurrent single-message events against a bare
// JetStream publish of the same events in the same run (connectortest.Measure).
// Run: go test -run XXX -bench Events -benchtime 5000x ./services/kuaishou
func BenchmarkEvents(b *testing.B) {
	const workers = 32
	w := newWorld(b)
	w.start(b)
	b.ResetTimer()
	connectortest.Measure(b, workers, "event", func(n int64) error {
		user := fmt.Sprintf("%032x", n%5000)
		req := signed(b, w.hooks.URL, appSecret, w.body(b, w.sim.Text(user, "第 "+strconv.FormatInt(n, 10)+" 条")))
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
		e, err := event.New(kuaishou.TypeReceived, "/connectors/kuaishou", map[string]any{"channel": "kuaishou", "channel_message_id": strconv.FormatInt(n, 10),
			"from": map[string]string{"kind": "kuaishou_openid", "value": "bare"}, "message": map[string]any{"type": "text", "text": "x"},
			"sent_at": time.Now().UTC()}, event.WithID("bench:"+strconv.FormatInt(n, 10)), event.WithPartitionKey("kuaishou_openid:"+strconv.FormatInt(n%5000, 10)))
		if err != nil {
			return err
		}
		return w.bus.Client.Publish(context.Background(), kuaishou.SubjectMessage, e)
	})
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, kuaishou.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
