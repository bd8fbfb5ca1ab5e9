package resilience

// The error kinds that tell the runtime what to do next with a failed call or handler: Permanent
// (dead-letter now, never retry), RetryAfter (retry, but not before d) and Unavailable (a
// dependency is down: not the message's fault, retry without counting). The bus consumer and the
// vendor-call pipeline read these and nothing else.

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

// RetryAfter marks err as transient with a known wait, e.g. a vendor 429 with Retry-After.
// RetryAfter(nil, d) is nil.
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
// vendor behind an open breaker — rather than of the message it handled. A bus consumer then
// pauses and retries the message until the dependency is back, and the failure never counts
// toward MaxDeliver: a dependency being down is not the message's fault. Unavailable(nil) is nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}

// IsUnavailable reports whether err, or any error it wraps, was marked Unavailable or is a
// vendor route's open circuit breaker (ErrCircuitOpen): the vendor is known to be down, so a
// consumer waits for it instead of spending the message's deliveries.
func IsUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u) || errors.Is(err, ErrCircuitOpen)
}
