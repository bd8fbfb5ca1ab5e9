package oms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
)

// maxResponse bounds a response body read from the OMS.
const maxResponse = 4 << 20

// Route specs of the OMS calls (vendor oms). All four are idempotent: lookups are reads, the
// OMS keys service records by external_id and their remarks by remark_id. Lookups get five attempts — an OMS failing one call in
// five then fails 0.03 % of lookups (three attempts: 0.8 %) — with a short backoff (25 ms,
// doubled, with jitter: at most ~375 ms of waiting) well within OMS_LOOKUP_BUDGET; the archive
// keeps the defaults (a failed delivery is redelivered by the bus). Operators override them with
// RESILIENCE_OMS_<ORDERS_LIST|ORDERS_GET|SERVICE_RECORD|SERVICE_RECORD_REMARK>_*.
var (
	lookupSettings = resilience.Settings{MaxAttempts: 5, Backoff: 25 * time.Millisecond}
	listSpec       = resilience.RouteSpec{Vendor: "oms", Op: "orders_list", Idempotent: true, Classify: classify(false), Settings: lookupSettings}
	getSpec        = resilience.RouteSpec{Vendor: "oms", Op: "orders_get", Idempotent: true, Classify: classify(true), Settings: lookupSettings}
	archiveSpec    = resilience.RouteSpec{Vendor: "oms", Op: "service_record", Idempotent: true, Classify: classify(false)}
	remarkSpec     = resilience.RouteSpec{Vendor: "oms", Op: "service_record_remark", Idempotent: true, Classify: classify(false)}
)

// classify maps the OMS's envelope codes to the pipeline's classes: 0 success (and 40401 for
// a lookup by order number, where "no such order" is an answer), 42901 rate-limited, 5xxxx
// transient, other codes refusals; an answer without an envelope (a proxy's error page) by its
// HTTP status.
func classify(notFoundIsAnswer bool) func(status int, code string) resilience.Class {
	return func(status int, code string) resilience.Class {
		switch {
		case code == "":
			return resilience.StatusClass(status)
		case code == "0":
			return resilience.ClassSuccess
		case code == strconv.Itoa(omswire.CodeOrderNotFound) && notFoundIsAnswer:
			return resilience.ClassSuccess
		case code == strconv.Itoa(omswire.CodeRateLimited):
			return resilience.ClassRateLimited
		case strings.HasPrefix(code, "5"):
			return resilience.ClassRetryable
		}
		return resilience.ClassPermanent
	}
}

// client calls the OMS open API (pkg/wire/oms). Every attempt is signed afresh (new timestamp and
// nonce, which the OMS refuses to see twice) and runs through its route's resilience pipeline.
type client struct {
	base, key, secret string
	http              *http.Client
	list, get, record *resilience.Route
	remark            *resilience.Route
}

func newClient(cfg *Config, hc *http.Client, reg *resilience.Registry) (*client, error) {
	c := &client{base: strings.TrimRight(cfg.APIBase, "/"), key: cfg.AppKey, secret: cfg.AppSecret, http: hc}
	for _, r := range []struct {
		dst  **resilience.Route
		spec resilience.RouteSpec
	}{{&c.list, listSpec}, {&c.get, getSpec}, {&c.record, archiveSpec}, {&c.remark, remarkSpec}} {
		rt, err := reg.Route(r.spec)
		if err != nil {
			return nil, err
		}
		*r.dst = rt
	}
	return c, nil
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// do sends one signed request through rt and decodes the envelope's data into out. It reports
// false for an order the OMS does not have (code 40401 on a route that takes it as an answer).
// Errors: a *resilience.Error wrapping *omswire.Error or ErrMalformedBody, or the pipeline's own
// outcome (timeout, circuit_open, ...).
func (c *client) do(ctx context.Context, rt *resilience.Route, call resilience.Call, method, path string, query url.Values, body []byte, out any) (bool, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return resilience.Do(ctx, rt, call, func(ctx context.Context, a *resilience.Attempt) (bool, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
			a.Request(body)
		} else if len(query) > 0 {
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			if m := q.Get("mobile"); m != "" {
				q.Set("mobile", omswire.MaskMobile(m)) // the audit record never holds the phone
			}
			a.Request([]byte(q.Encode()))
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return false, bus.Permanent(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		req.Header.Set("Accept", "application/json")
		omswire.SignRequest(req, c.key, c.secret, body, time.Now(), nonce())
		resp, err := c.http.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return false, err
		}
		err = omswire.ParseResponse(resp.StatusCode, resp.Header, raw, out)
		var oe *omswire.Error
		switch {
		case err == nil:
			a.Response(resp.StatusCode, "0", raw)
			return true, nil
		case errors.As(err, &oe) && oe.Code == omswire.CodeUnknownResponse:
			a.Response(resp.StatusCode, "", raw)
			return false, err
		case errors.As(err, &oe):
			a.Response(resp.StatusCode, strconv.Itoa(oe.Code), raw)
			a.RetryAfter(oe.RetryAfter)
			if oe.Code == omswire.CodeOrderNotFound && rt == c.get {
				return false, nil // an answer: no such order
			}
			return false, err
		default: // a success envelope whose data is not what the API documents
			a.Response(resp.StatusCode, "0", raw)
			return false, bus.Permanent(err)
		}
	})
}

// ordersByPhone returns the most recent orders of a buyer (E.164 phone), newest first.
func (c *client) ordersByPhone(ctx context.Context, call resilience.Call, phone string, limit int) (omswire.OrderPage, error) {
	var page omswire.OrderPage
	q := url.Values{"mobile": {omswire.NationalMobile(phone)}, "page": {"1"}, "page_size": {strconv.Itoa(limit)}}
	_, err := c.do(ctx, c.list, call, http.MethodGet, omswire.PathOrders, q, nil, &page)
	return page, err
}

// order returns one order; found is false when the OMS has none of that number.
func (c *client) order(ctx context.Context, call resilience.Call, no string) (o omswire.Order, found bool, err error) {
	found, err = c.do(ctx, c.get, call, http.MethodGet, omswire.PathOrders+"/"+url.PathEscape(no), nil, nil, &o)
	return o, found, err
}

// archive writes a service record (idempotent by its external_id).
func (c *client) archive(ctx context.Context, call resilience.Call, rec omswire.ServiceRecord) (omswire.ServiceRecordResult, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return omswire.ServiceRecordResult{}, bus.Permanent(err)
	}
	var res omswire.ServiceRecordResult
	_, err = c.do(ctx, c.record, call, http.MethodPost, omswire.PathServiceRecords, nil, body, &res)
	return res, err
}

// addRemark appends a remark to the service record of rm.ExternalID (idempotent by its
// remark_id). A record the OMS does not have fails with omswire.ErrRecordNotFound (a refusal:
// not retried).
func (c *client) addRemark(ctx context.Context, call resilience.Call, rm omswire.RecordRemark) (omswire.RecordRemarkResult, error) {
	body, err := json.Marshal(rm)
	if err != nil {
		return omswire.RecordRemarkResult{}, bus.Permanent(err)
	}
	var res omswire.RecordRemarkResult
	_, err = c.do(ctx, c.remark, call, http.MethodPost, omswire.PathRecordRemarks, nil, body, &res)
	return res, err
}
