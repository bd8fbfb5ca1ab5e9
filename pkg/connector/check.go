package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrMisconfigured is wrapped by a connector's start check when the vendor refuses its
// configuration (credentials refused, a project, account, sign or merchant the vendor does not
// know): the connector does not start, and the message names the variables to fix.
var ErrMisconfigured = errors.New("configuration refused by the vendor")

// Misconfigured returns an error wrapping ErrMisconfigured, formatted as fmt.Errorf does (%w
// wraps the vendor's answer too).
func Misconfigured(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMisconfigured}, args...)...)
}

// CheckBudget bounds a start check: one or two read-only calls with their retries.
const CheckBudget = 15 * time.Second

// CheckVendor runs a connector's start check: fn makes one cheap, read-only call with the
// connector's own signed client and returns an error wrapping ErrMisconfigured (see
// Misconfigured) for a configuration the vendor refused, any other error for a vendor it could
// not reach or that failed to answer (network, 5xx, timeout, rate limit), nil when the vendor
// accepted the configuration. fn's ctx is bounded by CheckBudget.
//
// CheckVendor returns fn's ErrMisconfigured error (the connector does not start) or ctx's
// error when ctx ended (the process is stopping); any other failure is logged as a warning
// naming vendor ("<vendor> unreachable at start: configuration not checked") and CheckVendor
// returns nil, so the connector starts: an outage is not a configuration error.
//
// A check whose call goes through pkg/resilience uses a route of its own (op "check" or the
// vendor's name for the call), so that it neither counts in nor trips the breakers and alerts of
// the routes that carry traffic.
func CheckVendor(ctx context.Context, rt *Runtime, vendor string, fn func(ctx context.Context) error) error {
	log := rt.Log
	if log == nil {
		log = slog.Default()
	}
	cctx, cancel := context.WithTimeout(ctx, CheckBudget)
	defer cancel()
	err := fn(cctx)
	switch {
	case err == nil:
		log.Info(vendor+": configuration accepted at start", "vendor", vendor)
		return nil
	case errors.Is(err, ErrMisconfigured):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	log.Warn(vendor+" unreachable at start: configuration not checked; the connector starts and its calls fail until the vendor answers",
		"vendor", vendor, "err", err)
	return nil
}
