package voice

import (
	"context"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// ServiceWithClock is Service with now as the clock of its calls' started, answered and ended
// times: a test that plays hours of RTP in seconds advances it by the audio it sent, so the
// ended event's durations are checked on the real code path.
func ServiceWithClock(now func() time.Time) service.Service {
	return connector.Define(Spec, func(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
		return setupWith(ctx, rt, cfg, now)
	})
}
