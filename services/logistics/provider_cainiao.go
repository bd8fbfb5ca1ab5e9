package logistics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
)

// codeCainiaoOK is the code a successful Cainiao answer is recorded with (Cainiao's success
// answer carries no code).
const codeCainiaoOK = "ok"

// cainiaoRoute declares Cainiao's trace query: success and "no such waybill" (an empty trace) are
// answers, the rate-limit and system codes are transient, other codes refusals.
func cainiaoRoute(cfg Config) resilience.RouteSpec {
	return resilience.RouteSpec{Vendor: "cainiao", Op: "trace_query", Idempotent: true, Settings: cainiaoSettings,
		Classify: statusFirst(func(code string) resilience.Class {
			switch code {
			case codeCainiaoOK, cainiao.ErrorCodeNotFound:
				return resilience.ClassSuccess
			case cainiao.ErrorCodeRateLimited:
				return resilience.ClassRateLimited
			case cainiao.ErrorCodeSystem:
				return resilience.ClassRetryable
			}
			return resilience.ClassPermanent
		}),
		Fallback: func(c resilience.Call, _ error) *resilience.Fallback {
			return &resilience.Fallback{ManualURL: cfg.manualURL(ProviderCainiao, c.Key), Note: manualNote(c.Key)}
		},
	}
}

// cainiaoClient makes Cainiao link gateway trace query attempts (one number per call: the
// documented query takes a single mail_no).
type cainiaoClient struct {
	http         *http.Client
	url          string
	providerID   string
	secret       string
	msgType      string
	supplierID   string
	deliveryCode string
}

// deliveryCodeOf guesses the carrier code from the number's prefix (the trace query needs it).
func (c *cainiaoClient) deliveryCodeOf(no string) string {
	up := strings.ToUpper(no)
	switch {
	case strings.HasPrefix(up, "YT"):
		return "YTO"
	case strings.HasPrefix(up, "JT"):
		return "JTSD"
	case strings.HasPrefix(up, "JD"):
		return "JD"
	case strings.HasPrefix(up, "SF"):
		return "SF"
	}
	return c.deliveryCode
}

// trace is one attempt asking for the trace of no, reported on a (data_digest redacted). An
// unknown number is an empty trace, not an error. Errors as sfClient.query, with *cainiao.Error.
func (c *cainiaoClient) trace(ctx context.Context, a *resilience.Attempt, no string) (cainiao.TraceData, error) {
	payload, err := json.Marshal(cainiao.TraceQuery{SupplierID: c.supplierID, DeliveryCode: c.deliveryCodeOf(no), MailNo: no, Type: cainiao.TypeOrigin})
	if err != nil {
		return cainiao.TraceData{}, bus.Permanent(err)
	}
	req := cainiao.NewRequest(c.providerID, c.secret, c.msgType, "", payload)
	audited := req.Form()
	audited.Set(cainiao.FieldDigest, "[REDACTED]")
	status, raw, err := post(ctx, a, c.http, c.url, cainiao.ContentType, req.Encode(), []byte(audited.Encode()))
	if err != nil {
		return cainiao.TraceData{}, err
	}
	if status != http.StatusOK {
		a.Response(status, "", raw)
		return cainiao.TraceData{}, fmt.Errorf("cainiao: HTTP %d: %s", status, bytes.TrimSpace(raw[:min(len(raw), 200)]))
	}
	d, err := cainiao.ParseTraceResponse(raw)
	var ce *cainiao.Error
	switch {
	case err == nil:
		a.Response(status, codeCainiaoOK, raw)
		return d, nil
	case errors.As(err, &ce):
		a.Response(status, ce.Code, raw)
		switch {
		case errors.Is(err, cainiao.ErrNotFound):
			return cainiao.TraceData{MailNo: no}, nil
		case errors.Is(err, cainiao.ErrRateLimited):
			a.RetryAfter(time.Second)
		}
		return cainiao.TraceData{}, err
	default:
		a.Response(status, codeMalformed, raw)
		return cainiao.TraceData{}, err
	}
}
