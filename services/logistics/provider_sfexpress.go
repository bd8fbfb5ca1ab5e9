package logistics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
)

// sfRoute declares SF's route query: A1000 with the business result S0000 is success, A1005 the
// rate limit, A1099 a system error (transient); any other platform or business code is a refusal.
func sfRoute(cfg Config) resilience.RouteSpec {
	return resilience.RouteSpec{Vendor: "sfexpress", Op: "route_query", Idempotent: true, Settings: sfSettings,
		Classify: statusFirst(func(code string) resilience.Class {
			switch code {
			case sfexpress.BizOK:
				return resilience.ClassSuccess
			case sfexpress.CodeRateLimited:
				return resilience.ClassRateLimited
			case sfexpress.CodeSystem:
				return resilience.ClassRetryable
			}
			return resilience.ClassPermanent
		}),
		Fallback: func(c resilience.Call, _ error) *resilience.Fallback {
			return &resilience.Fallback{ManualURL: cfg.manualURL(ProviderSF, c.Key), Note: manualNote(c.Key)}
		},
	}
}

// sfClient makes SF route query attempts.
type sfClient struct {
	http      *http.Client
	url       string
	partnerID string
	checkword string
	language  string
	now       func() time.Time
}

// query is one attempt asking SF for the routes of up to 10 numbers. It reports the exchange on a
// (the msgDigest, a credential-derived value, is redacted from the audited form); the route
// classifies the reported code. Errors: *sfexpress.Error for SF's refusals and failures,
// transport errors, and bus.Permanent for a request that cannot be built.
func (c *sfClient) query(ctx context.Context, a *resilience.Attempt, nos []string, checkPhone string) ([]sfexpress.RouteResp, error) {
	q := sfexpress.NewRouteQuery(nos, checkPhone)
	q.Language = c.language
	msg, err := json.Marshal(q)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	req := sfexpress.NewRequest(c.partnerID, c.checkword, uuid.NewString(), sfexpress.ServiceRouteQuery, msg, c.now())
	audited := req.Form()
	audited.Set(sfexpress.FieldMsgDigest, "[REDACTED]")
	status, raw, err := post(ctx, a, c.http, c.url, sfexpress.ContentType, req.Encode(), []byte(audited.Encode()))
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		a.Response(status, "", raw)
		return nil, fmt.Errorf("sfexpress: HTTP %d: %s", status, bytes.TrimSpace(raw[:min(len(raw), 200)]))
	}
	_, routes, err := sfexpress.ParseRouteResponse(raw)
	var se *sfexpress.Error
	switch {
	case err == nil:
		a.Response(status, sfexpress.BizOK, raw)
		return routes, nil
	case errors.As(err, &se):
		a.Response(status, se.Code, raw)
		if se.Code == sfexpress.CodeRateLimited {
			a.RetryAfter(time.Second) // SF names no wait; its quota is per second
		}
		return nil, err
	default:
		a.Response(status, codeMalformed, raw)
		return nil, err
	}
}
