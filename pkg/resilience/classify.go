package resilience

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// Class is what an attempt's result means for the pipeline.
type Class uint8

// The classes a vendor answer falls in.
const (
	// ClassSuccess: the vendor served the call (including business answers such as "no such
	// waybill": map those codes to success and read them from the body).
	ClassSuccess Class = iota + 1
	// ClassRetryable: a transient failure (5xx, "system busy"); retried when the call is
	// idempotent, and counted by the circuit breaker.
	ClassRetryable
	// ClassRateLimited: the vendor asked to slow down (429, its rate-limit code); retried after
	// Retry-After when the call is idempotent and the wait fits the caller's budget, otherwise
	// returned as a RetryAfter error. Not counted by the breaker.
	ClassRateLimited
	// ClassPermanent: the vendor refused the request (bad parameters, credentials); never retried,
	// returned as a Permanent error. Not counted by the breaker.
	ClassPermanent
	// classTimeout: the attempt timed out (assigned by the pipeline, never by a classifier).
	classTimeout
	// classCanceled: the caller's context ended during the attempt.
	classCanceled
)

func (c Class) String() string {
	switch c {
	case ClassSuccess:
		return "success"
	case ClassRetryable:
		return "retryable"
	case ClassRateLimited:
		return "rate_limited"
	case ClassPermanent:
		return "permanent"
	case classTimeout:
		return "timeout"
	case classCanceled:
		return "canceled"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Codes maps a vendor's result codes to classes, e.g. SF Express
//
//	resilience.Codes{"A1000": resilience.ClassSuccess, "A1001": resilience.ClassPermanent,
//		"A1011": resilience.ClassRateLimited, "A1099": resilience.ClassRetryable}
type Codes map[string]Class

// StatusClass is the class of an HTTP status when the vendor gave no code the route maps:
// 1xx-3xx success (0, no HTTP status, too), 429 rate-limited, 408, 425 and 5xx other than 501
// and 505 retryable, anything else permanent.
func StatusClass(status int) Class {
	switch {
	case status == 0 || status < 400:
		return ClassSuccess
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly:
		return ClassRetryable
	case status == http.StatusNotImplemented || status == http.StatusHTTPVersionNotSupported:
		return ClassPermanent
	case status >= 500:
		return ClassRetryable
	}
	return ClassPermanent
}

// classOf classifies a vendor answer: Classify if the spec has one; else a mapped code; else an
// unmapped code on a 2xx answer of a route with Codes is UnknownCode; else StatusClass.
func (r *Route) classOf(status int, code string) Class {
	if r.spec.Classify != nil {
		return r.spec.Classify(status, code)
	}
	if code != "" {
		if c, ok := r.spec.Codes[code]; ok {
			return c
		}
	}
	sc := StatusClass(status)
	if code != "" && len(r.spec.Codes) > 0 && sc == ClassSuccess {
		return r.unknownCode
	}
	return sc
}

// attemptError is an attempt's failure with its class.
type attemptError struct {
	class      Class
	status     int
	code       string
	retryAfter time.Duration
	unsent     bool // the request provably never reached the vendor
	err        error
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// classify turns what fn returned for one attempt into nil (success) or an *attemptError.
// actx is the attempt's context; parent the call's.
func (r *Route) classify(parent, actx context.Context, a *Attempt, err error) *attemptError {
	ae := &attemptError{status: a.status, code: a.code, retryAfter: a.retryAfter, err: err}
	if d, ok := bus.RetryDelay(err); ok && d > ae.retryAfter {
		ae.retryAfter = d
	}
	switch {
	case a.responded:
		ae.class = r.classOf(a.status, a.code)
		if ae.class == ClassSuccess && err == nil {
			return nil
		}
		switch {
		case bus.IsPermanent(err):
			ae.class = ClassPermanent
		case ae.class == ClassSuccess && ae.retryAfter > 0:
			ae.class = ClassRateLimited
		case ae.class == ClassSuccess:
			// The vendor said yes but fn could not use the answer (e.g. an undecodable body).
			ae.class = ClassPermanent
		}
		if ae.err == nil {
			ae.err = fmt.Errorf("%s %s answered status %d code %q (%s)", r.vendor, r.op, a.status, a.code, ae.class)
		}
	case err == nil:
		return nil
	case bus.IsPermanent(err):
		ae.class = ClassPermanent
	case ae.retryAfter > 0:
		ae.class = ClassRateLimited
	case parent.Err() != nil:
		ae.class = classCanceled
	case actx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		ae.class = classTimeout
	default:
		ae.class = ClassRetryable
		ae.unsent = unsent(err)
	}
	return ae
}

// unsent reports transport errors that happen before a request is written: dial and DNS
// failures. Only these let a non-idempotent call be retried.
func unsent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// ParseRetryAfter reads a Retry-After header value (seconds or an HTTP date).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}
