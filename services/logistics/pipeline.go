package logistics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// This file is the connector's seam to pkg/resilience (its registry is the Runtime's: audit
// records on omni.audit.logistics, route alerts): the call carried through the cache and the
// batcher, the carriers' route specs and the one HTTP exchange an attempt makes.

// codeMalformed is the code an attempt reports for an answer that is not the carrier's shape
// (a proxy's page, a truncated body): transient, like a 5xx.
const codeMalformed = "malformed"

// The carriers' figures. Route queries are reads: idempotent, retried. Five attempts keep a
// vendor failing one call in five from failing more than 0.03 % of lookups, within the request's
// LOGISTICS_BUDGET; a permit may be waited for up to 1s (the budget is 2s), so a burst of retries
// queues for SF's quota instead of failing. Operators override any figure per route with
// RESILIENCE_SFEXPRESS_ROUTE_QUERY_* and RESILIENCE_CAINIAO_TRACE_QUERY_*.
var (
	// SF's quota is 30 calls/s: the route's rate limit counts calls (a batch of up to 10
	// waybills is one call), and the batcher paces batches to it (see Config.BatchWindow).
	sfSettings = resilience.Settings{RateLimit: 30, MaxAttempts: 5, MaxWait: time.Second}
	// Cainiao publishes no quota (vendors/README.md §8: its gateway limits are per app, set with
	// the account). Its trace query takes one waybill per call, so the tool's 100 lookups/s
	// (issue 5) are up to 100 calls/s: the route allows that, with retries on top. At 50/s a
	// Cainiao-heavy load queued for permits (p99 > 250 ms in `go run ./bench tools`). Set
	// RESILIENCE_CAINIAO_TRACE_QUERY_RATE_LIMIT to the account's figure.
	cainiaoSettings = resilience.Settings{RateLimit: 100, MaxAttempts: 5, MaxWait: time.Second}
)

// statusFirst classifies an answer by its HTTP status unless it is a 200, whose vendor code
// then decides with byCode.
func statusFirst(byCode func(code string) resilience.Class) func(status int, code string) resilience.Class {
	return func(status int, code string) resilience.Class {
		if status != http.StatusOK {
			return resilience.StatusClass(status)
		}
		if code == codeMalformed {
			return resilience.ClassRetryable
		}
		return byCode(code)
	}
}

// post makes one attempt's HTTP exchange: it records the request as audited (credential-derived
// fields redacted by the caller), sends body and returns the answer's status and body. The caller
// reports the answer on a with the carrier's code once it has read it. A transport failure or
// unreadable body is returned as is (transient).
func post(ctx context.Context, a *resilience.Attempt, client *http.Client, url, contentType, body string, audited []byte) (int, []byte, error) {
	a.Request(audited)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, bus.Permanent(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, resilience.MaxResponseBody))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, raw, nil
}
