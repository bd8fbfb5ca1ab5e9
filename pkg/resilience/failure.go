package resilience

import (
	"errors"
	"fmt"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// Sentinels a failed call matches with errors.Is, one per outcome. They match whether the
// *Error was made here or rebuilt from a ...failed event's error_code (see ErrorCode).
var (
	ErrVendor       = errors.New("vendor call failed")         // outcome error: transient failures, retries exhausted
	ErrTimeout      = errors.New("vendor call timed out")      // outcome timeout
	ErrRejected     = errors.New("vendor rejected the call")   // outcome permanent
	ErrRateLimited  = errors.New("vendor rate limit")          // outcome rate_limited
	ErrCircuitOpen  = errors.New("circuit breaker open")       // outcome circuit_open
	ErrBulkheadFull = errors.New("too many calls in flight")   // outcome bulkhead_full
	ErrThrottled    = errors.New("route rate limit exhausted") // outcome throttled
	ErrCanceled     = errors.New("vendor call canceled")       // outcome canceled
	ErrNotInBatch   = errors.New("key missing from the batch answer")
)

var sentinels = map[string]error{
	audit.OutcomeError: ErrVendor, audit.OutcomeTimeout: ErrTimeout, audit.OutcomePermanent: ErrRejected,
	audit.OutcomeRateLimited: ErrRateLimited, audit.OutcomeCircuitOpen: ErrCircuitOpen,
	audit.OutcomeBulkheadFull: ErrBulkheadFull, audit.OutcomeThrottled: ErrThrottled, audit.OutcomeCanceled: ErrCanceled,
}

// Fallback is what an agent can do when the vendor could not answer: a connector puts it in its
// ...failed event (e.g. omni.tool.crm.lookup.failed's fallback) so the desk can offer it.
type Fallback struct {
	// ManualURL is where the agent can look the answer up by hand (e.g. the carrier's public
	// tracking page for the waybill).
	ManualURL string `json:"manual_url,omitempty"`
	// Note tells the agent what to do, in the desk's language.
	Note string `json:"note,omitempty"`
}

// Error is the error of a failed call. Every failure Do returns is an *Error (its text has phone,
// ID and bank numbers masked):
//
//	var e *resilience.Error
//	if errors.As(err, &e) { failed.ErrorCode, failed.Fallback = e.Code(), e.Fallback }
//
// It matches the outcome's sentinel (errors.Is(err, resilience.ErrCircuitOpen)), bus.IsPermanent
// for outcome permanent, bus.RetryDelay for a rate limit whose Retry-After did not fit the
// caller's budget and bus.IsUnavailable for an open breaker, so a bus handler that returns it is
// dead-lettered, redelivered or paused correctly.
type Error struct {
	Vendor, Op string
	// Outcome is one of the audit.Outcome* values.
	Outcome string
	// Status and VendorCode are the last attempt's HTTP status and vendor code, if any.
	Status     int
	VendorCode string
	// Attempts is the number of requests sent.
	Attempts int
	// Fallback is the manual path for the agent, when the route or call has one.
	Fallback *Fallback
	// Err is the last attempt's error (wrapped in bus.Permanent, bus.RetryAfter or
	// bus.Unavailable as described above).
	Err error

	maybeSent bool
}

// MayHaveTakenEffect reports whether the failed call may still have done its work at the vendor,
// which matters for a call that is not idempotent (create a ticket, send a message): the vendor
// failed (5xx), an attempt timed out or the caller gave up while a request was out. It is false
// when no request can have reached the vendor — none was sent (breaker open, bulkhead full,
// throttled, the budget spent waiting) or each failed before it was written (dial, DNS) — and
// for a refusal or a rate limit, which the vendor answers without doing the work.
func (e *Error) MayHaveTakenEffect() bool {
	switch e.Outcome {
	case audit.OutcomeError, audit.OutcomeTimeout, audit.OutcomeCanceled:
		return e.maybeSent
	}
	return false
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %s after %d attempt(s)", e.Vendor, e.Op, e.Outcome, e.Attempts)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	// Masked: connectors put this text in ...failed events and logs.
	return pii.Redact(s)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's outcome.
func (e *Error) Is(target error) bool { return sentinels[e.Outcome] == target }

// Code is the error code for a ...failed event: the vendor's code if it gave one, else the HTTP
// status, else the outcome.
func (e *Error) Code() string {
	switch {
	case e.VendorCode != "":
		return e.VendorCode
	case e.Status != 0:
		return fmt.Sprint(e.Status)
	}
	return e.Outcome
}

// ErrorCode returns the sentinel for an outcome name (as found in a ...failed event's
// error_code when the vendor gave none), or nil.
func ErrorCode(outcome string) error { return sentinels[outcome] }

// FallbackOf returns the fallback carried by err, or nil.
func FallbackOf(err error) *Fallback {
	var e *Error
	if errors.As(err, &e) {
		return e.Fallback
	}
	return nil
}
