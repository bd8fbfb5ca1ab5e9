package payment

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// This file is the connector's seam to pkg/resilience: the providers' route figures and the one
// HTTP exchange an attempt makes.

// Codes an attempt reports besides the providers' own.
const (
	// codeMalformed: an answer that is not the provider's shape (a proxy's page): transient.
	codeMalformed = "malformed"
	// codeBadSignature: an answer whose signature does not verify. Not retried: a wrong key in
	// the configuration, or someone between us and the provider; either way the agent must not
	// get a link we cannot trust.
	codeBadSignature = "bad_signature"
)

// settings are both providers' figures. Creating an order is idempotent by out_trade_no (the
// providers answer the same order again), so every route retries within PAYMENT_BUDGET (300 ms):
// 150 ms per attempt (an attempt is started only with half of that left), up to 5 attempts 10–40 ms
// apart — at 10 ms vendor latency and 20 % vendor errors, 3 attempts of 250 ms failed 1.7 % of
// links; 5 short ones leave 0.2^5 ≈ 0.03 %. Neither publishes a per-merchant
// quota for these APIs: 400 calls/s, and a permit may be waited for up to 100 ms (a third of the
// budget), so that a burst of requests — retries included — queues briefly instead of failing
// (at 200/s and 50 ms, 20 % vendor errors at 100 links/s failed 16 % of the links as
// "throttled"). Operators override any figure with RESILIENCE_<VENDOR>_<OP>_*.
var settings = resilience.Settings{Timeout: 150 * time.Millisecond, MaxAttempts: 5, Backoff: 10 * time.Millisecond,
	MaxBackoff: 40 * time.Millisecond, RateLimit: 400, MaxWait: 100 * time.Millisecond}

// byStatusThen classifies a non-200 answer by its status, a 200 by its code with codes.
func byStatusThen(codes resilience.Codes) func(status int, code string) resilience.Class {
	return func(status int, code string) resilience.Class {
		switch {
		case code == codeMalformed:
			return resilience.ClassRetryable
		case code == codeBadSignature:
			return resilience.ClassPermanent
		case status/100 != 2:
			if c, ok := codes[code]; ok && code != "" {
				return c
			}
			return resilience.StatusClass(status)
		}
		if c, ok := codes[code]; ok {
			return c
		}
		return resilience.ClassPermanent
	}
}

// exchange makes one attempt's HTTP exchange: it records audited as the request, sends req and
// returns the answer. The caller reports the answer on a once it has classified it.
func exchange(a *resilience.Attempt, client *http.Client, req *http.Request, audited []byte) (int, http.Header, []byte, error) {
	a.Request(audited)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, resilience.MaxResponseBody))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, err
	}
	return resp.StatusCode, resp.Header, raw, nil
}

// newRequest builds a request or fails permanently.
func newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	return req, nil
}
