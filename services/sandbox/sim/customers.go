package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// Customer is one simulated person. The same person reaches the contact center on several
// channels: their phone is what SMS shows and what they give in WeChat or web chat, so the
// unifier can join them.
type Customer struct {
	ID    int
	Name  string
	Phone string // E.164, e.g. +8613800138000
	Email string
	// WeChatID is the person's external_userid towards the simulated WeCom kf account.
	WeChatID string
	// Visitor is the person's anonymous web chat visitor id (the widget's cookie).
	Visitor string
}

var surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"}
var given = []string{"伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟"}

// Population returns n customers generated deterministically from seed.
func Population(n int, seed uint64) []Customer {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Customer, n)
	for i := range out {
		// 13x..19x mobile prefixes, 11 digits, valid for libphonenumber's CN metadata.
		prefix := []string{"138", "139", "150", "186", "177", "199"}[r.IntN(6)]
		phone := fmt.Sprintf("+86%s%08d", prefix, r.IntN(1e8))
		out[i] = Customer{
			ID:       i + 1,
			Name:     surnames[r.IntN(len(surnames))] + given[r.IntN(len(given))],
			Phone:    phone,
			Email:    fmt.Sprintf("customer%d@example.com", i+1),
			WeChatID: fmt.Sprintf("wmSim%08x%04d", r.Uint32(), i+1),
			Visitor:  fmt.Sprintf("v_%016x", r.Uint64()),
		}
	}
	return out
}

// Channel is how a simulated customer reaches the contact center through one vendor: it makes
// the vendor deliver the customer's message to the connector exactly as the vendor would
// (signed callback, message to pull, uplink push, ...).
type Channel interface {
	// Name is the omnibus channel ("wechatkf", "sms", "webchat").
	Name() string
	// Write delivers text from c. It returns once the vendor's delivery was accepted by the
	// connector (2xx), or with the connector's answer as the error.
	Write(ctx context.Context, c Customer, text string) error
}

// NewChannel is the Channel of a simulator whose customers reach the connector through write.
func NewChannel(name string, write func(ctx context.Context, c Customer, text string) error) Channel {
	return funcChannel{name, write}
}

type funcChannel struct {
	name  string
	write func(context.Context, Customer, string) error
}

func (f funcChannel) Name() string { return f.name }
func (f funcChannel) Write(ctx context.Context, c Customer, text string) error {
	return f.write(ctx, c, text)
}
