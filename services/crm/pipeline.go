package crm

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// callKey carries the resilience.Call (customer and request ids for audit records) of the lookup
// being served to the provider's calls.
type callKey struct{}

func withCall(ctx context.Context, c resilience.Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

func callOf(ctx context.Context) resilience.Call {
	c, _ := ctx.Value(callKey{}).(resilience.Call)
	return c
}
