package bus

// The error kinds that steer delivery: what a Handler (or BatchHandler) returns to tell the
// consumer what to do with the message next. Permanent dead-letters it now, RetryAfter naks it
// with the given delay, Unavailable pauses the consumer until the dependency serves again; any
// other error naks with backoff. They live here, at the bottom of the import graph, because the
// consumer is what reads them; pkg/resilience returns them from failed vendor calls (a refusal is
// Permanent, a rate limit past the caller's budget RetryAfter, an open breaker Unavailable), as
// river's JobCancel and JobSnooze sit beside the worker they steer.

import (
	"errors"
	"time"
)

type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: a consumer dead-letters the message at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return e.err.Error() + " (retry after " + e.after.String() + ")"
}
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as transient with a known wait, e.g. a vendor 429 with Retry-After: a
// consumer naks the message with that delay. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// RetryDelay returns the wait requested by a RetryAfter error in err's chain.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable marks err as the failure of a dependency the handler needs — its database, NATS, a
// vendor behind an open breaker — rather than of the message it handled. A consumer then pauses
// and retries the message until the dependency is back, and the failure never counts toward
// MaxDeliver: a dependency being down is not the message's fault (see Dependency).
// Unavailable(nil) is nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}

// IsUnavailable reports whether err, or any error it wraps, was marked Unavailable (as
// pkg/resilience marks a vendor route's open circuit breaker).
func IsUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u)
}
