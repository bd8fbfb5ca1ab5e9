package resilience

import (
	"context"
	"sync/atomic"
)

type callKey struct{}

// WithCall returns ctx carrying c, the ids (customer, correlation) of the request a connector is
// serving, so that vendor calls made deeper down (through a cache, a Batcher, a provider
// interface) put them on their audit records: CallFrom(ctx) gets it back.
func WithCall(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the Call that WithCall put on ctx, or the zero Call.
func CallFrom(ctx context.Context) Call {
	c, _ := ctx.Value(callKey{}).(Call)
	return c
}

type permitKey struct{}

// withReservedPermit returns ctx telling the route's Do that the first call made with it holds
// a rate-limit permit already (reserved by a paced Batcher when it scheduled the batch).
func withReservedPermit(ctx context.Context) context.Context {
	return context.WithValue(ctx, permitKey{}, new(atomic.Bool))
}

// takeReservedPermit reports whether ctx carries a reserved permit not used yet, and uses it:
// a batch split into several calls has one permit for the first of them.
func takeReservedPermit(ctx context.Context) bool {
	used, ok := ctx.Value(permitKey{}).(*atomic.Bool)
	return ok && used.CompareAndSwap(false, true)
}
