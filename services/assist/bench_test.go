package assist_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/assist"
)

// BenchmarkFirstToken measures what omnibus adds before the agent sees the first piece of a
// suggestion: per iteration, the time from POSTing to the sandbox model until its first content
// chunk is read (direct), and from publishing a request on the bus until assist's first live
// delta arrives (omnibus: JetStream, the consumer, masking, the prompt, the same vendor call,
// the live publish), against the same sandbox, unpaced. It reports both and their ratio.
func BenchmarkFirstToken(b *testing.B) {
	bb := bustest.New(b, bus.WithLogger(quiet()))
	_, cfg := sandboxPaced(b, 0)
	servicetest.Run(b, assist.Service(), bb.Client, nil, cfg)
	firsts := make(chan string, 64)
	sub, err := bb.Client.SubscribeLive(assist.RouteDelta.Subject, func(_ context.Context, _ string, e event.Event) {
		select {
		case firsts <- event.CorrelationID(e):
		default:
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Stop() })
	body := `{"model":"qwen-plus","stream":true,"messages":[{"role":"user","content":"我的快递 ` + mobile + ` 还没到"}]}`
	direct := func() time.Duration {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, cfg["ASSIST_API_BASE"]+"/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"content":"`) && !strings.Contains(sc.Text(), `"content":""`) {
				break
			}
		}
		d := time.Since(start)
		for sc.Scan() { // finish the stream, as assist does
		}
		return d
	}
	tb := testBundle{bus: bb}
	omnibus := func() time.Duration {
		start := time.Now()
		id := tb.request(b, turn{"customer", "我的快递 " + mobile + " 还没到"})
		for got := range firsts {
			if got == id {
				return time.Since(start)
			}
		}
		return 0
	}
	direct()
	omnibus() // warm both paths up
	var d, o time.Duration
	b.ResetTimer()
	for b.Loop() {
		d += direct()
		o += omnibus()
	}
	n := float64(b.N)
	b.ReportMetric(float64(d.Microseconds())/n, "µs-direct")
	b.ReportMetric(float64(o.Microseconds())/n, "µs-omnibus")
	b.ReportMetric(float64(o)/float64(d), "ratio")
}
