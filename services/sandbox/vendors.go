package sandbox

import (
	"context"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// vendor mounts one simulator on env and returns the customer channel it offers (nil if none).
type vendor struct {
	name  string
	mount func(ctx context.Context, env *sim.Env, cfg *Config, lookup config.Lookup) (sim.Channel, error)
}

// vendors is every simulator the sandbox runs.
var vendors = []vendor{}

func mountVendors(ctx context.Context, env *sim.Env, cfg *Config, lookup config.Lookup) ([]sim.Channel, error) {
	var chans []sim.Channel
	for _, v := range vendors {
		ch, err := v.mount(ctx, env, cfg, lookup)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			chans = append(chans, ch)
		}
	}
	return chans, nil
}

func vendorNames() []string {
	out := make([]string, len(vendors))
	for i, v := range vendors {
		out[i] = v.name
	}
	return out
}
