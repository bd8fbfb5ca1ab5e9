package sentiment_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/services/sentiment"
)

// BenchmarkHandle is the per-message path: decode the message, read the conversation's episode
// state, score (builtin, and the Tencent sandbox over loopback), publish the score and store the
// state, on a real embedded JetStream. Report with -benchtime and compare; no assertion on time.
func BenchmarkHandle(b *testing.B) {
	for _, provider := range []string{"builtin", "tencent"} {
		b.Run(provider, func(b *testing.B) {
			bb := bustest.New(b, bus.WithLogger(quiet()))
			_, env := sandbox(b, provider)
			var cfg sentiment.Config
			if err := config.Load(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
				b.Fatal(err)
			}
			rt := &connector.Runtime{Spec: sentiment.Spec, Bus: bb.Client, Log: quiet(), Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			c, err := sentiment.New(context.Background(), rt, cfg, sentiment.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if provider != "builtin" { // the vendor's resilience registry: flushed and stopped at the end
				reg, _ := rt.Resilience()
				b.Cleanup(func() { _ = reg.Close(context.Background()) })
			}
			texts := []string{"快递三天都没更新，我要投诉！！", "Thanks, that fixed it, appreciate the help.", "你好，我想查一下订单"}
			msgs := make([]bus.Delivery, 0, 1024)
			for i := range cap(msgs) {
				msgs = append(msgs, bus.Delivery{Event: messageAdded(b, fmt.Sprintf("bench-%d", i), "wechatkf", texts[i%len(texts)])})
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				d := msgs[i%len(msgs)]
				if i >= len(msgs) { // a fresh message id each time, so nothing is skipped as applied
					e := messageAdded(b, fmt.Sprintf("bench-%d", i), "wechatkf", texts[i%len(texts)])
					d = bus.Delivery{Event: e}
				}
				if err := c.Handle(context.Background(), d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
