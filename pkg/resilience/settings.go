package resilience

import (
	"fmt"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// Settings are the tunables of one route. A connector states the vendor's figures in its
// RouteSpec (zero fields take the defaults below); an operator overrides any of them per route
// with RESILIENCE_<VENDOR>_<OP>_<NAME>, e.g. RESILIENCE_SFEXPRESS_ROUTE_QUERY_TIMEOUT=500ms
// (vendor and op upper-cased).
type Settings struct {
	Timeout         time.Duration `env:"TIMEOUT" desc:"per-attempt timeout, always within the caller's remaining budget (default 300ms)"`
	Budget          time.Duration `env:"BUDGET" desc:"total time of a call whose context has no deadline (default 1s)"`
	MaxAttempts     int           `env:"MAX_ATTEMPTS" desc:"attempts of a call, the first included; a non-idempotent call is retried only when its request provably never left (default 3)"`
	Backoff         time.Duration `env:"BACKOFF" desc:"delay before the first retry, doubled at each retry, with jitter (default 50ms)"`
	MaxBackoff      time.Duration `env:"MAX_BACKOFF" desc:"longest retry delay (default 1s)"`
	RateLimit       float64       `env:"RATE_LIMIT" desc:"calls per second this process may send (the vendor's quota share); 0 = unlimited (default 0)"`
	MaxConcurrent   int           `env:"MAX_CONCURRENT" desc:"calls in flight at once, the bulkhead (default 64)"`
	MaxWait         time.Duration `env:"MAX_WAIT" desc:"longest wait for a rate-limit permit or a bulkhead slot (default 100ms)"`
	BreakerRatio    float64       `env:"BREAKER_RATIO" desc:"failure ratio (timeouts, transport errors, retryable vendor errors) that opens the breaker (default 0.5)"`
	BreakerMinCalls int           `env:"BREAKER_MIN_CALLS" desc:"attempts in the window before the ratio counts (default 20)"`
	BreakerWindow   time.Duration `env:"BREAKER_WINDOW" desc:"window of the breaker's ratio (default 10s)"`
	BreakerOpenFor  time.Duration `env:"BREAKER_OPEN_FOR" desc:"how long the breaker stays open before half-open probes (default 5s)"`
	BreakerProbes   int           `env:"BREAKER_PROBES" desc:"successful half-open probes that close the breaker; a failed probe opens it again (default 3)"`
}

// DefaultSettings are the settings of a route that states none.
var DefaultSettings = Settings{
	Timeout:         300 * time.Millisecond,
	Budget:          time.Second,
	MaxAttempts:     3,
	Backoff:         50 * time.Millisecond,
	MaxBackoff:      time.Second,
	MaxConcurrent:   64,
	MaxWait:         100 * time.Millisecond,
	BreakerRatio:    0.5,
	BreakerMinCalls: 20,
	BreakerWindow:   10 * time.Second,
	BreakerOpenFor:  5 * time.Second,
	BreakerProbes:   3,
}

// withDefaults fills the zero fields of s from DefaultSettings.
func (s Settings) withDefaults() Settings {
	d := DefaultSettings
	pick := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	pick(&s.Timeout, d.Timeout)
	pick(&s.Budget, d.Budget)
	pick(&s.Backoff, d.Backoff)
	pick(&s.MaxBackoff, d.MaxBackoff)
	pick(&s.MaxWait, d.MaxWait)
	pick(&s.BreakerWindow, d.BreakerWindow)
	pick(&s.BreakerOpenFor, d.BreakerOpenFor)
	if s.MaxAttempts == 0 {
		s.MaxAttempts = d.MaxAttempts
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = d.MaxConcurrent
	}
	if s.BreakerRatio == 0 {
		s.BreakerRatio = d.BreakerRatio
	}
	if s.BreakerMinCalls == 0 {
		s.BreakerMinCalls = d.BreakerMinCalls
	}
	if s.BreakerProbes == 0 {
		s.BreakerProbes = d.BreakerProbes
	}
	return s
}

// Validate reports the first bad setting.
func (s *Settings) Validate() error {
	switch {
	case s.Timeout <= 0 || s.Budget <= 0 || s.Backoff <= 0 || s.MaxBackoff <= 0 || s.MaxWait <= 0 ||
		s.BreakerWindow <= 0 || s.BreakerOpenFor <= 0:
		return fmt.Errorf("durations must be > 0 (timeout %s, budget %s, backoff %s, max backoff %s, max wait %s, breaker window %s, breaker open for %s)",
			s.Timeout, s.Budget, s.Backoff, s.MaxBackoff, s.MaxWait, s.BreakerWindow, s.BreakerOpenFor)
	case s.Timeout > s.Budget:
		return fmt.Errorf("TIMEOUT (%s) cannot exceed BUDGET (%s)", s.Timeout, s.Budget)
	case s.MaxAttempts < 1 || s.MaxAttempts > 10:
		return fmt.Errorf("MAX_ATTEMPTS must be between 1 and 10, got %d", s.MaxAttempts)
	case s.MaxBackoff < s.Backoff:
		return fmt.Errorf("MAX_BACKOFF (%s) cannot be shorter than BACKOFF (%s)", s.MaxBackoff, s.Backoff)
	case s.RateLimit < 0:
		return fmt.Errorf("RATE_LIMIT must be >= 0, got %g", s.RateLimit)
	case s.MaxConcurrent < 1:
		return fmt.Errorf("MAX_CONCURRENT must be >= 1, got %d", s.MaxConcurrent)
	case s.BreakerRatio <= 0 || s.BreakerRatio > 1:
		return fmt.Errorf("BREAKER_RATIO must be in (0, 1], got %g", s.BreakerRatio)
	case s.BreakerMinCalls < 1 || s.BreakerProbes < 1:
		return fmt.Errorf("BREAKER_MIN_CALLS and BREAKER_PROBES must be >= 1, got %d and %d", s.BreakerMinCalls, s.BreakerProbes)
	}
	return nil
}

// EnvPrefix returns the prefix of a route's override variables: RESILIENCE_<VENDOR>_<OP>_.
func EnvPrefix(vendor, op string) string {
	return "RESILIENCE_" + strings.ToUpper(vendor) + "_" + strings.ToUpper(op) + "_"
}

// load applies the route's environment overrides to s (which holds the spec's values with the
// defaults filled in) and validates the result.
func (s Settings) load(vendor, op string, env config.Lookup) (Settings, error) {
	prefix := EnvPrefix(vendor, op)
	if err := config.Load(&s, func(k string) (string, bool) { return env(prefix + k) }); err != nil {
		return s, fmt.Errorf("route %s.%s (%s*): %w", vendor, op, prefix, err)
	}
	return s, nil
}

// Describe lists the override variables of a route with the value the route uses when none is
// set (for `omnibus config` and connector READMEs).
func Describe(vendor, op string, s Settings) []config.Field {
	s = s.withDefaults()
	vals := map[string]string{
		"TIMEOUT": s.Timeout.String(), "BUDGET": s.Budget.String(), "MAX_ATTEMPTS": fmt.Sprint(s.MaxAttempts),
		"BACKOFF": s.Backoff.String(), "MAX_BACKOFF": s.MaxBackoff.String(), "RATE_LIMIT": fmt.Sprint(s.RateLimit),
		"MAX_CONCURRENT": fmt.Sprint(s.MaxConcurrent), "MAX_WAIT": s.MaxWait.String(),
		"BREAKER_RATIO": fmt.Sprint(s.BreakerRatio), "BREAKER_MIN_CALLS": fmt.Sprint(s.BreakerMinCalls),
		"BREAKER_WINDOW": s.BreakerWindow.String(), "BREAKER_OPEN_FOR": s.BreakerOpenFor.String(),
		"BREAKER_PROBES": fmt.Sprint(s.BreakerProbes),
	}
	fields := config.Describe(&Settings{})
	prefix := EnvPrefix(vendor, op)
	for i := range fields {
		fields[i].Default = vals[fields[i].Env]
		fields[i].Env = prefix + fields[i].Env
	}
	return fields
}
