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
	// Angry is the share of writes that start a complaint: a customer who escalates over a few
	// messages (so the desk shows a sentiment alert) and then calms down. Default 0.08; a
	// negative value turns complaints off.
	Angry float64
	Seed  int64
	Log   *slog.Logger
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

// complaints are stories a customer tells over several messages, one per turn of the scenario:
// they turn negative, escalate (投诉, 12315, "speak to your manager") and, most of them, calm
// down once helped, so the desk's sentiment alert is raised and then cleared.
var complaints = [][]string{
	{"我的快递一周了还没到，怎么回事？", "都说了三天到，现在还是没有物流更新，太慢了！", "你们这服务太差了，再不解决我就要投诉！！",
		"好的，谢谢，问题解决了！", "谢谢你们，非常满意"},
	{"I was charged twice for my order", "This is ridiculous, nobody has answered me for an hour",
		"This is unacceptable. I want to speak to your manager and I will file a chargeback!",
		"Thanks, that fixed it, appreciate the help.", "OK it works now, thank you so much!"},
	{"收到的商品是坏的，包装都破了", "客服一直不回复，太失望了", "再不给我退款我就打12315投诉你们！", "退款收到了，谢谢你们，非常满意", "好的，谢谢"},
	{"I've tried five times to pay, this is so frustrating!!", "Worst service ever. Cancel my account."},
}

// story is a complaint in progress: who tells it, on which channel, and what is left to say.
type story struct {
	customer int
	channel  sim.Channel
	lines    []string
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
	angry := s.Angry
	if angry == 0 {
		angry = 0.08
	}
	r := rand.New(rand.NewPCG(uint64(s.Seed), 42))
	var stories []*story
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
		text := lines[r.IntN(len(lines))]
		switch {
		case len(stories) > 0 && r.Float64() < 0.5: // the next line of a complaint in progress
			k := r.IntN(len(stories))
			st := stories[k]
			i, ch, text = st.customer, st.channel, st.lines[0]
			if st.lines = st.lines[1:]; len(st.lines) == 0 {
				stories = append(stories[:k], stories[k+1:]...)
			}
		case r.Float64() < angry: // a customer starts complaining
			lines := complaints[r.IntN(len(complaints))]
			text = lines[0]
			stories = append(stories, &story{customer: i, channel: ch, lines: lines[1:]})
		}
		c := s.Customers[i]
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
