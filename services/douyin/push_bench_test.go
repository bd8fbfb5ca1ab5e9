package douyin_test

import (
	"strconv"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
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
		return connectortest.PostOK(req)
	})
	connectortest.Measure(b, workers, "bare", connectortest.BarePublish(w.bus.Client, douyin.SubjectMessage, douyin.Channel, douyin.IdentityKind))
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, douyin.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
