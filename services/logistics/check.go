package logistics

import (
	"context"
	"errors"
	"net/http"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
)

// The start check (connector.CheckVendor): each configured carrier is asked, on a route of its
// own (<carrier>.check: the route_query/trace_query breaker, alerts and rate limit never see it),
// about a waybill that does not exist. Any answer the carrier gives about the number itself
// (no routes, B01 unknown waybill, a business code) proves the credentials; a platform refusal
// (SF A1004 unknown partner or unauthorised service, A1006 bad msgDigest, A1003 IP; Cainiao S01
// unknown provider or bad data_digest) stops the start naming the variables. A carrier that fails
// or does not answer only warns.

// CheckWaybill is the number the start check asks about.
const CheckWaybill = "SF0000000000000"

// checkSpec is spec on its own route, op "check", tried twice.
func checkSpec(spec resilience.RouteSpec) resilience.RouteSpec {
	spec.Op = "check"
	spec.Fallback = nil
	spec.Settings.MaxAttempts = 2
	spec.Settings.RateLimit = 0
	return spec
}

// check asks SF's EXP_RECE_SEARCH_ROUTES for CheckWaybill.
func (p *sfProvider) check(ctx context.Context) error {
	_, err := resilience.Do(ctx, p.checkRoute, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) ([]sfexpress.RouteResp, error) {
		return p.client.query(ctx, a, []string{CheckWaybill}, "")
	})
	var se *sfexpress.Error
	switch {
	case err == nil, errors.As(err, &se) && !se.Platform:
		return nil // an answer about the number: the credentials work
	case errors.As(err, &se) && se.Code == sfexpress.CodeBadDigest:
		return connector.Misconfigured("SF_CHECKWORD does not make the msgDigest SF expects for SF_PARTNER_ID=%s: %w", p.client.partnerID, se)
	case errors.As(err, &se) && se.Code == sfexpress.CodeNoPermission:
		return connector.Misconfigured("SF_PARTNER_ID=%s: SF knows no such customer code, or it may not call %s: %w", p.client.partnerID, sfexpress.ServiceRouteQuery, se)
	case errors.As(err, &se) && se.Code == sfexpress.CodeIPDenied:
		return connector.Misconfigured("SF refused this server's IP address for SF_PARTNER_ID=%s (add it in the SF open platform): %w", p.client.partnerID, se)
	case errors.As(err, &se) && se.Code != sfexpress.CodeRateLimited && se.Code != sfexpress.CodeSystem:
		return connector.Misconfigured("SF refused SF_PARTNER_ID=%s: %w", p.client.partnerID, se)
	}
	if s := httpStatus(err); s == http.StatusNotFound {
		return connector.Misconfigured("SF_API_BASE: %s answered 404: %w", p.client.url, err)
	}
	return err
}

// check asks Cainiao's trace query for CheckWaybill.
func (p *cainiaoProvider) check(ctx context.Context) error {
	_, err := resilience.Do(ctx, p.checkRoute, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) (cainiao.TraceData, error) {
		return p.client.trace(ctx, a, CheckWaybill)
	})
	var ce *cainiao.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce) && ce.Code == cainiao.ErrorCodeSign:
		return connector.Misconfigured("CAINIAO_PROVIDER_ID=%s / CAINIAO_SECRET_KEY refused (%s: the provider id is unknown or the secret does not make its data_digest): %w",
			p.client.providerID, ce.Code, ce)
	case errors.As(err, &ce) && ce.Code == cainiao.ErrorCodeMissing:
		return connector.Misconfigured("Cainiao refused the trace query as incomplete (CAINIAO_MSG_TYPE=%s, CAINIAO_SUPPLIER_ID, CAINIAO_DELIVERY_CODE): %w", p.client.msgType, ce)
	}
	if s := httpStatus(err); s == http.StatusNotFound {
		return connector.Misconfigured("CAINIAO_API_BASE: %s answered 404: %w", p.client.url, err)
	}
	return err
}

// httpStatus is the HTTP status of a failed call (0 when it has none).
func httpStatus(err error) int {
	var re *resilience.Error
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// checkCarriers runs the start check of each configured carrier.
func (c *Connector) checkCarriers(ctx context.Context) error {
	if c.sf != nil {
		if err := connector.CheckVendor(ctx, c.rt, "sfexpress", c.sf.check); err != nil {
			return err
		}
	}
	if c.cn != nil {
		if err := connector.CheckVendor(ctx, c.rt, "cainiao", c.cn.check); err != nil {
			return err
		}
	}
	return nil
}
