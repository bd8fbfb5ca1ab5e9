package ticket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// This file is the connector's seam to pkg/resilience (its registry is the Runtime's: audit
// records on omni.audit.ticket, route alerts): the vendor's three routes and the one HTTP
// exchange an attempt makes.

// routes are the vendor's operations: <vendor>.search (idempotent: retried), <vendor>.create
// (idempotent, hence retried, when the provider's create carries an idempotency key — Zendesk —;
// else never retried once the request may have reached the vendor) and <vendor>.comment (not
// idempotent).
type routes struct {
	search, create, comment *resilience.Route
	// check is the start check's route (check.go).
	check *resilience.Route
}

// ticketSettings are the ticket APIs' figures: they answer in hundreds of milliseconds, so an
// attempt gets 3s (300ms would time out creates that succeed); up to 5 attempts for the calls that
// are retried (at a 20 % error rate, 0.2^5 = 0.03 % of calls fail every attempt), and for a Jira
// create the number of times one request may send it; 10 calls/s per route; the breaker opens at
// 50 % failures of at least 40 attempts (with 20, a vendor failing 20 % of calls would open it
// once in ~300 starts by chance; with 40, once in ~40 000), stays open 10s and closes after 2 good
// probes. Operators override any of them per route with
// RESILIENCE_<JIRA|ZENDESK>_<SEARCH|CREATE|COMMENT>_*.
var ticketSettings = resilience.Settings{Timeout: 3 * time.Second, Budget: 8 * time.Second, MaxAttempts: 5, Backoff: 100 * time.Millisecond,
	RateLimit: 10, MaxConcurrent: 16, BreakerMinCalls: 40, BreakerOpenFor: 10 * time.Second, BreakerProbes: 2}

// newRoutes builds p's routes. A failed call's fallback (in its audit record and
// omnibus_vendor_fallbacks_total) is the vendor's page for the agent to do it by hand: the new
// ticket form, or for a comment the ticket (the call's Key).
func newRoutes(reg *resilience.Registry, p provider) (routes, error) {
	newTicket := func(resilience.Call, error) *resilience.Fallback {
		return &resilience.Fallback{ManualURL: p.NewTicketURL()}
	}
	onTicket := func(c resilience.Call, _ error) *resilience.Fallback {
		return &resilience.Fallback{ManualURL: p.TicketURL(c.Key)}
	}
	var r routes
	for _, op := range []struct {
		dst        **resilience.Route
		name       string
		idempotent bool
		fallback   func(resilience.Call, error) *resilience.Fallback
	}{{&r.search, "search", true, newTicket}, {&r.create, "create", p.KeyedCreate(), newTicket}, {&r.comment, "comment", false, onTicket}} {
		rt, err := reg.Route(resilience.RouteSpec{Vendor: p.Name(), Op: op.name, Idempotent: op.idempotent, Settings: ticketSettings, Fallback: op.fallback})
		if err != nil {
			return routes{}, err
		}
		*op.dst = rt
	}
	var err error
	r.check, err = checkRoute(reg, p.Name())
	return r, err
}

// request is one JSON call to the vendor.
type request struct {
	method, url, auth string
	header            map[string]string // extra request headers (Idempotency-Key)
	body              []byte            // nil: no body
	// vendorErr renders the vendor's error answer (non-2xx).
	vendorErr func(status int, body []byte, retryAfter time.Duration) error
	// writes, if set, counts the times the request was written to the vendor, across the
	// pipeline's attempts and the HTTP transport's own retries of a request with an
	// Idempotency-Key on a broken kept-alive connection.
	writes *atomic.Int32
	// inspect, if set, sees the headers of a 2xx answer (before parse).
	inspect func(h http.Header)
	// parse reads a 2xx answer; its failure fails the call as permanent.
	parse func([]byte) error
}

// send makes r through route rt: each attempt sends the request, reports it and the answer for
// the audit record, and lets the route classify the HTTP status (2xx success, 429 rate-limited
// with Retry-After — 1s if the vendor names none —, 408 and 5xx transient, other 4xx refusals).
func send(ctx context.Context, rt *resilience.Route, c resilience.Call, client *http.Client, r request) error {
	_, err := resilience.Do(ctx, rt, c, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
		return struct{}{}, attempt(ctx, a, client, r)
	})
	return err
}

func attempt(ctx context.Context, a *resilience.Attempt, client *http.Client, r request) error {
	var body io.Reader
	if r.body != nil {
		a.Request(r.body)
		body = bytes.NewReader(r.body)
	}
	if r.writes != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { r.writes.Add(1) }})
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return bus.Permanent(err)
	}
	req.Header.Set("Authorization", r.auth)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, resilience.MaxResponseBody))
	if err != nil {
		return err
	}
	a.Response(resp.StatusCode, "", raw)
	if resp.StatusCode/100 == 2 {
		if r.inspect != nil {
			r.inspect(resp.Header)
		}
		if err := r.parse(raw); err != nil {
			return bus.Permanent(err)
		}
		return nil
	}
	wait, _ := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if resp.StatusCode == http.StatusTooManyRequests && wait <= 0 {
		wait = time.Second
	}
	a.RetryAfter(wait)
	return r.vendorErr(resp.StatusCode, raw, wait)
}

// ambiguous reports whether a failed create or comment may still have taken effect at the vendor
// (resilience.Error.MayHaveTakenEffect: a 5xx, a timeout or a give-up while a request was out).
func ambiguous(err error) bool {
	var fail *resilience.Error
	return errors.As(err, &fail) && fail.MayHaveTakenEffect()
}
