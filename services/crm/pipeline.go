package crm

import (
	"context"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// envKey carries the service's config.Lookup to setup, so the resilience routes read their
// RESILIENCE_SALESFORCE_<OP>_* overrides from the same source as Config.
type envKey struct{}

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

// newRegistry builds the connector's resilience registry: audit records on omni.audit.crm and
// route alerts through the bus. It is closed (flushing audit records) when ctx ends, after the
// consumers drained.
func newRegistry(ctx context.Context, rt *connector.Runtime) (*resilience.Registry, error) {
	env, _ := ctx.Value(envKey{}).(config.Lookup)
	//nolint:contextcheck // New takes no context: its publisher's lifetime is bounded by Close below
	reg, err := resilience.New(resilience.Options{Service: Spec.Name, Bus: rt.Bus, Env: env, Log: rt.Log})
	if err != nil {
		return nil, err
	}
	rt.Go(ctx, "resilience", func(ctx context.Context) error {
		<-ctx.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return reg.Close(cctx)
	})
	return reg, nil
}
