package weibo_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
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
		return connectortest.PostOK(req)
	})
	connectortest.Measure(b, workers, "bare", connectortest.BarePublish(w.bus.Client, weibo.SubjectMessage, weibo.Channel, weibo.IdentityKind))
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, weibo.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
