package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Scenario makes simulated customers write, one message per Interval. Each customer has a home
// channel; a share of them (CrossChannel) later continue on another channel with the same phone,
// which is what the unifier must join into one conversation.
type Scenario struct {
	Customers    []sim.Customer
	Channels     []sim.Channel
	Interval     time.Duration
	CrossChannel float64 // default 0.3
	Seed         int64
	Log          *slog.Logger
}

// Lines a contact center hears every day; a few carry order and waybill numbers so the desk's
// tools have something to look up.
var lines = []string{
	"你好，我的快递到哪了？运单号 SF1234567890123",
	"Hi, where is my parcel? Tracking SF7788990011223",
	"我想退货，订单号 20261127-0042",
	"可以开发票吗？",
	"I was charged twice for order 20261126-0193",
	"会员积分怎么兑换？",
	"The package arrived damaged, what can I do?",
	"能帮我改一下收货地址吗？",
	"谢谢，问题解决了！",
	"Can I talk to a human agent please?",
	"支付失败了，怎么重新付款？",
	"你们的客服电话是多少？",
}

// Run writes until ctx ends. A write the connector refused is logged and the scenario goes on.
func (s *Scenario) Run(ctx context.Context) error {
	if len(s.Channels) == 0 || len(s.Customers) == 0 {
		return errors.New("scenario: no channels or no customers")
	}
	cross := s.CrossChannel
	if cross == 0 {
		cross = 0.3
	}
	r := rand.New(rand.NewPCG(uint64(s.Seed), 42))
	home := make([]int, len(s.Customers))
	for i := range home {
		home[i] = r.IntN(len(s.Channels))
	}
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		i := r.IntN(len(s.Customers))
		ch := s.Channels[home[i]]
		if r.Float64() < cross {
			ch = s.Channels[r.IntN(len(s.Channels))]
		}
		c, text := s.Customers[i], lines[r.IntN(len(lines))]
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := ch.Write(wctx, c, text)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			s.Log.Warn("simulated customer could not write", "channel", ch.Name(), "customer", c.ID, "err", err)
		case err == nil:
			s.Log.Debug("simulated customer wrote", "channel", ch.Name(), "customer", c.ID)
		}
	}
}
