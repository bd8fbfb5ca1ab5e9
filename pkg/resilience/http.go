package resilience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// MaxResponseBody caps the response body Route.HTTP reads (a larger body fails the attempt as
// permanent: the vendor is not answering what the connector expects).
const MaxResponseBody = 4 << 20

// Reply is a vendor's HTTP answer as Route.HTTP read it.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
	// Code is the vendor's result code (RouteSpec.CodeOf), or "".
	Code string
}

// NewRequest builds the request of one attempt. It is called again for every retry, so
// timestamps, nonces and signatures are fresh; build it with ctx (http.NewRequestWithContext).
type NewRequest func(ctx context.Context) (*http.Request, error)

// HTTP makes an HTTP call through the route, the common case of Do: it builds the request with
// newReq for each attempt, sends it with the route's client, reads the answer, takes the vendor
// code with RouteSpec.CodeOf, honours Retry-After on 429 and 503, records both bodies for the
// audit record and classifies the answer. When the answer is a success and out is not nil, the
// body is decoded into out as JSON (a body that does not decode fails the call as permanent).
//
//	var res trackResponse
//	_, err := route.HTTP(ctx, resilience.Call{CustomerID: id, Key: waybill}, func(ctx context.Context) (*http.Request, error) {
//		return sf.SignedRequest(ctx, cfg, "EXP_RECE_SEARCH_ROUTES", query)
//	}, &res)
func (rt *Route) HTTP(ctx context.Context, call Call, newReq NewRequest, out any) (*Reply, error) {
	return Do(ctx, rt, call, func(ctx context.Context, a *Attempt) (*Reply, error) {
		req, err := newReq(ctx)
		if err != nil {
			return nil, bus.Permanent(fmt.Errorf("build request: %w", err))
		}
		if req.GetBody != nil {
			if body, err := req.GetBody(); err == nil {
				b, _ := io.ReadAll(io.LimitReader(body, MaxResponseBody))
				body.Close()
				a.Request(b)
				a.reqType = req.Header.Get("Content-Type")
			}
		}
		resp, err := rt.client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
		if err != nil {
			return nil, fmt.Errorf("read %s %s answer: %w", rt.vendor, rt.op, err)
		}
		if len(body) > MaxResponseBody {
			return nil, bus.Permanent(fmt.Errorf("%s %s answer exceeds %d bytes", rt.vendor, rt.op, MaxResponseBody))
		}
		reply := &Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
		if rt.spec.CodeOf != nil {
			reply.Code = rt.spec.CodeOf(resp.StatusCode, resp.Header, body)
		}
		a.Response(resp.StatusCode, reply.Code, body)
		a.respType = resp.Header.Get("Content-Type")
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				a.RetryAfter(d)
			}
		}
		if out != nil && rt.classOf(reply.Status, reply.Code) == ClassSuccess {
			if err := json.Unmarshal(body, out); err != nil {
				return reply, bus.Permanent(fmt.Errorf("decode %s %s answer: %w", rt.vendor, rt.op, err))
			}
		}
		return reply, nil
	})
}

// JSONCode returns a RouteSpec.CodeOf that reads a top-level field of a JSON answer (a string,
// or a number written as in the body), e.g. JSONCode("errcode") for WeChat, JSONCode("apiResultCode")
// for SF Express. A body that is not a JSON object has no code.
func JSONCode(field string) func(status int, header http.Header, body []byte) string {
	return func(_ int, _ http.Header, body []byte) string {
		body = bytes.TrimSpace(body)
		if len(body) == 0 || body[0] != '{' {
			return ""
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return ""
		}
		raw, ok := m[field]
		if !ok {
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err == nil {
			return n.String()
		}
		return ""
	}
}

// HeaderCode returns a RouteSpec.CodeOf that reads a response header (e.g. a vendor's
// X-Error-Code).
func HeaderCode(name string) func(status int, header http.Header, body []byte) string {
	return func(_ int, h http.Header, _ []byte) string { return h.Get(name) }
}
