package oms

import (
	"context"
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
)

// The start check (connector.CheckVendor): the signed lookup of an order that does not exist,
// on a route of its own (oms.check) so that it neither counts in nor trips the lookups' breaker
// and alerts. The OMS answering "no such order" (40401) proves OMS_API_BASE, OMS_APP_KEY and
// OMS_APP_SECRET; 40101 refuses the key, 40102 the signature (the secret), 40103 the clock; a
// 404 without the OMS's envelope names OMS_API_BASE. Busy, 5xx and rate limits only warn.

// checkOrder is the order number the check asks for: no OMS issues it.
const checkOrder = "OMNIBUS-START-CHECK"

var checkSpec = resilience.RouteSpec{Vendor: "oms", Op: "check", Idempotent: true, Classify: classify(true),
	Settings: resilience.Settings{Timeout: 5 * time.Second, Budget: 12 * time.Second, MaxAttempts: 2,
		Backoff: 500 * time.Millisecond, MaxBackoff: time.Second, MaxConcurrent: 1, MaxWait: time.Second}}

// checkVendor runs the start check.
func (c *client) checkVendor(ctx context.Context, rt *connector.Runtime, reg *resilience.Registry) error {
	route, err := reg.Route(checkSpec)
	if err != nil {
		return err
	}
	return connector.CheckVendor(ctx, rt, "oms", func(ctx context.Context) error {
		_, err := c.do(ctx, route, resilience.Call{Key: "start check"}, "GET", omswire.PathOrders+"/"+checkOrder, nil, nil, nil)
		var oe *omswire.Error
		if err == nil || !errors.As(err, &oe) {
			return err // nil: found or "no such order", both accepted; else unreachable
		}
		switch oe.Code {
		case omswire.CodeOrderNotFound:
			return nil
		case omswire.CodeInvalidAppKey:
			return connector.Misconfigured("OMS_APP_KEY=%s refused by %s: %w", c.key, c.base, oe)
		case omswire.CodeSignature:
			return connector.Misconfigured("OMS_APP_SECRET refused by %s (the signature does not verify): %w", c.base, oe)
		case omswire.CodeTimestamp:
			return connector.Misconfigured("the OMS at %s refused this server's clock: %w; synchronise it (NTP)", c.base, oe)
		case omswire.CodeUnknownResponse:
			if oe.HTTPStatus >= 500 || oe.HTTPStatus == 429 {
				return err // a proxy's error page: the OMS is unreachable
			}
			return connector.Misconfigured("OMS_API_BASE=%s does not answer as the OMS open API (HTTP %d without its envelope)", c.base, oe.HTTPStatus)
		case omswire.CodeRateLimited, omswire.CodeSystemError, omswire.CodeServiceUnavail, omswire.CodeGatewayTimeout:
			return err
		}
		return connector.Misconfigured("the OMS at %s refused the start check: %w", c.base, oe)
	})
}
