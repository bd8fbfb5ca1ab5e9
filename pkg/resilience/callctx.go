package resilience

import "context"

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
