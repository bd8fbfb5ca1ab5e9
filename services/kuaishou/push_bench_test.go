package kuaishou_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
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
		return connectortest.PostOK(req)
	})
	connectortest.Measure(b, workers, "bare", connectortest.BarePublish(w.bus.Client, kuaishou.SubjectMessage, kuaishou.Channel, kuaishou.IdentityKind))
	b.StopTimer()
	if n := w.bus.StoredCount(b, bus.StreamIn, kuaishou.SubjectMessage+".>"); n != uint64(2*b.N) {
		b.Fatalf("%d stored, want %d", n, 2*b.N)
	}
}
