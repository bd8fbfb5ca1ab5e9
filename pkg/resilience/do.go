package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// Call is what the pipeline knows about one call besides the request: who it is for (audit) and
// what to offer when it fails.
type Call struct {
	// CustomerID is the customer the call is made for (audit records, ce-subject of the record).
	CustomerID string
	// CorrelationID is the id of the event that caused the call (the ...requested event).
	CorrelationID string
	// Key is what is asked (a waybill, an order id); RouteSpec.Fallback may use it.
	Key string
	// Fallback, if set, is offered when this call fails (instead of RouteSpec.Fallback's).
	Fallback *Fallback

	staleAvailable func() bool // set by Cached: a stale value will be served on failure
}

// Func makes one attempt of a call. It must honour ctx (the attempt's deadline: the route's
// timeout within the caller's budget) and should report what it sent and received on a, so the
// pipeline can classify the answer and audit it. Returning bus.Permanent(err) or
// bus.RetryAfter(err, d) overrides the classification.
type Func[T any] func(ctx context.Context, a *Attempt) (T, error)

// Attempt is one try of a call, handed to Func.
type Attempt struct {
	n          int
	reqBody    []byte
	reqType    string
	respBody   []byte
	respType   string
	status     int
	code       string
	responded  bool
	retryAfter time.Duration
}

// Number is 1 for the first attempt, 2 for the first retry, ...
func (a *Attempt) Number() int { return a.n }

// Request records the request body for the audit record (it is masked before it leaves the
// process).
func (a *Attempt) Request(body []byte) { a.reqBody = body }

// Response records the vendor's answer: HTTP status (0 if not HTTP), the vendor's result code ("" if
// none) and the body. The route classifies status and code (RouteSpec.Codes, StatusClass); a
// non-success class fails the attempt even if Func returns no error.
func (a *Attempt) Response(status int, code string, body []byte) {
	a.status, a.code, a.respBody, a.responded = status, code, body, true
}

// RetryAfter records the wait the vendor asked for (Retry-After, or a wait in its body).
func (a *Attempt) RetryAfter(d time.Duration) {
	if d > 0 {
		a.retryAfter = d
	}
}

// callState is one call's view shared by the attempt wrapper and the retry policy.
type callState struct {
	rt        *Route
	deadline  time.Time
	attempts  int
	last      *Attempt
	lastErr   *attemptError
	nextDelay time.Duration
	maybeSent bool // an attempt's request may have reached the vendor
}

// budgetReserve is kept between the end of the pipeline's work and the caller's deadline, so the
// fallback and the error reach the caller before its own deadline passes.
func budgetReserve(remaining time.Duration) time.Duration {
	return max(0, min(remaining/20, 10*time.Millisecond))
}

// minAttemptTime is the least budget worth starting another attempt with.
func (s *callState) minAttemptTime() time.Duration { return s.rt.settings.Timeout / 2 }

// shouldRetry is the retry policy's predicate: whether err (an attempt's failure) is retried.
// It also fixes the delay before the retry.
func (s *callState) shouldRetry(err error) bool {
	var ae *attemptError
	switch {
	case errors.Is(err, timeout.ErrExceeded):
		ae = &attemptError{class: classTimeout, err: err}
		if s.lastErr != nil {
			ae.status, ae.code = s.lastErr.status, s.lastErr.code
		}
		s.lastErr = ae
	case errors.As(err, &ae):
	default:
		return false // breaker open, bulkhead full, throttled, canceled: not retried
	}
	switch ae.class {
	case ClassRetryable, classTimeout, ClassRateLimited:
	default:
		return false
	}
	if !s.rt.spec.Idempotent && !ae.unsent {
		return false
	}
	if s.attempts >= s.rt.settings.MaxAttempts {
		return false
	}
	delay := ae.retryAfter
	if delay == 0 {
		delay = s.backoff(s.attempts)
	}
	if time.Until(s.deadline) < delay+s.minAttemptTime() {
		return false // the caller gets the failure (with RetryAfter for a rate limit) in time
	}
	if lim := s.rt.limiter; lim != nil {
		// A retry is a call like any other: it takes its permit while it backs off, so retries
		// never push the route over the vendor's quota (batches paced to the limit make room).
		wait := lim.TryReservePermit(delay + s.rt.settings.MaxWait)
		if wait < 0 {
			return false // no permit in time: the caller gets the attempt's failure
		}
		delay = max(delay, wait)
		if time.Until(s.deadline) < delay+s.minAttemptTime() {
			return false
		}
	}
	s.nextDelay = delay
	return true
}

// backoff is the delay after the n-th attempt: Backoff·2^(n-1), capped at MaxBackoff, with
// "equal jitter" (half fixed, half random) so synchronized callers spread out.
func (s *callState) backoff(n int) time.Duration {
	d := s.rt.settings.Backoff
	for i := 1; i < n && d < s.rt.settings.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.rt.settings.MaxBackoff)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// countsForBreaker: the breaker counts timeouts and retryable failures (the vendor's health),
// not refusals, rate limits or cancellations.
func countsForBreaker(err error) bool {
	if errors.Is(err, timeout.ErrExceeded) {
		return true
	}
	var ae *attemptError
	return errors.As(err, &ae) && (ae.class == ClassRetryable || ae.class == classTimeout)
}

// Do makes one call through the route: rate limiter, bulkhead, circuit breaker and a timeout on
// each attempt, retries with backoff for idempotent calls, all within ctx's deadline (or the
// route's Budget when ctx has none). It records one span, the metrics, one audit record and the
// outcome for alerts. A failure is an *Error carrying the route's fallback.
func Do[T any](ctx context.Context, rt *Route, call Call, fn Func[T]) (T, error) {
	start := time.Now()
	ctx, span := rt.reg.tel.tracer.Start(ctx, "vendor "+rt.vendor+" "+rt.op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("omnibus.vendor", rt.vendor), attribute.String("omnibus.vendor.op", rt.op),
			attribute.Bool("omnibus.vendor.idempotent", rt.spec.Idempotent)))
	defer span.End()

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(rt.settings.Budget)
	}
	deadline = deadline.Add(-budgetReserve(time.Until(deadline)))
	bctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	st := &callState{rt: rt, deadline: deadline}
	var out T
	var err error
	if rt.breaker.IsOpen() && rt.breaker.RemainingDelay() > 0 {
		err = circuitbreaker.ErrOpen // fail fast, without waiting for a rate-limit permit
	} else if err = rt.firstPermit(bctx); err == nil {
		policies := make([]failsafe.Policy[any], 0, len(rt.inner)+1)
		if rt.settings.MaxAttempts > 1 {
			policies = append(policies, retrypolicy.NewBuilder[any]().
				HandleIf(func(_ any, err error) bool { return st.shouldRetry(err) }).
				WithMaxAttempts(rt.settings.MaxAttempts).
				WithDelayFunc(func(failsafe.ExecutionAttempt[any]) time.Duration { return st.nextDelay }).
				ReturnLastFailure().
				Build())
		}
		policies = append(policies, rt.inner...)
		_, err = failsafe.With(policies...).WithContext(bctx).GetWithExecution(func(e failsafe.Execution[any]) (any, error) {
			a := &Attempt{n: st.attempts + 1}
			st.attempts++
			st.last = a
			// The attempt's context is bctx's child, made by failsafe's timeout policy.
			actx := e.Context()
			v, ferr := fn(actx, a) //nolint:contextcheck // actx derives from ctx (deadline, values, trace)
			cerr := rt.classify(bctx, actx, a, ferr)
			st.maybeSent = st.maybeSent || cerr == nil || !cerr.unsent
			if cerr == nil {
				out = v
				st.lastErr = nil
				return nil, nil
			}
			st.lastErr = cerr
			span.AddEvent("attempt failed", trace.WithAttributes(attribute.Int("attempt", a.n),
				attribute.String("class", st.lastErr.class.String()), attribute.Int("status", a.status), attribute.String("code", a.code)))
			return nil, cerr
		})
	}
	return finish(ctx, rt, call, st, start, span, out, err)
}

// firstPermit takes the rate-limit permit of a call's first attempt (retries reserve theirs in
// shouldRetry), unless the call holds one reserved for it (a paced Batcher's batch).
func (rt *Route) firstPermit(ctx context.Context) error {
	if rt.limiter == nil || takeReservedPermit(ctx) {
		return nil
	}
	return rt.limiter.AcquirePermitWithMaxWait(ctx, rt.settings.MaxWait)
}

// finish turns the pipeline's result into the caller's, and records it.
func finish[T any](ctx context.Context, rt *Route, call Call, st *callState, start time.Time, span trace.Span, out T, err error) (T, error) {
	outcome := audit.OutcomeOK
	var cause error
	if err != nil {
		outcome, cause = rt.outcomeOf(ctx, st, err)
	}
	latency := time.Since(start)
	rec := audit.Entry{Record: audit.Record{
		At: start.UTC(), Service: rt.reg.o.Service, Vendor: rt.vendor, Op: rt.op, Outcome: outcome,
		LatencyMS: float64(latency.Microseconds()) / 1000, Attempts: st.attempts, Idempotent: rt.spec.Idempotent,
		CustomerID: call.CustomerID, CorrelationID: call.CorrelationID,
	}, SpanContext: span.SpanContext()}
	if sc := span.SpanContext(); sc.HasTraceID() {
		rec.TraceID = sc.TraceID().String()
	}
	if a := st.last; a != nil {
		rec.Status, rec.Code = a.status, a.code
		rec.RequestBody, rec.RequestType = a.reqBody, a.reqType
		rec.ResponseBody, rec.ResponseType = a.respBody, a.respType
	}
	var fail *Error
	if err != nil {
		fail = &Error{Vendor: rt.vendor, Op: rt.op, Outcome: outcome, Status: rec.Status, VendorCode: rec.Code, Attempts: st.attempts, Err: cause,
			maybeSent: st.maybeSent}
		switch {
		case call.staleAvailable != nil && call.staleAvailable():
			rec.Fallback = audit.FallbackStaleCache
		case call.Fallback != nil:
			fail.Fallback = call.Fallback
		case rt.spec.Fallback != nil:
			fail.Fallback = rt.spec.Fallback(call, cause)
		}
		if fail.Fallback != nil && rec.Fallback == "" {
			rec.Fallback = audit.FallbackManual
		}
		rec.Error = cause.Error()
		span.SetStatus(codes.Error, outcome)
		span.SetAttributes(attribute.String("omnibus.vendor.outcome", outcome))
		rt.reg.o.Log.DebugContext(ctx, "vendor call failed", "vendor", rt.vendor, "op", rt.op, "outcome", outcome,
			"attempts", st.attempts, "status", rec.Status, "code", rec.Code, "err", pii.Redact(cause.Error()))
	}
	span.SetAttributes(attribute.Int("omnibus.vendor.attempts", st.attempts))
	rt.reg.tel.record(ctx, rt, outcome, metricCode(rec.Status, rec.Code), latency, rec.Fallback)
	rt.reg.audit.Emit(ctx, rec)
	if rt.reg.alerts != nil {
		rt.reg.alerts.Record(rt.vendor, rt.op, outcome)
	}
	if fail != nil {
		var zero T
		return zero, fail
	}
	return out, nil
}

func metricCode(status int, code string) string {
	if code != "" {
		return code
	}
	if status != 0 {
		return strconv.Itoa(status)
	}
	return ""
}

// outcomeOf names a failure and builds the cause the caller sees.
func (rt *Route) outcomeOf(ctx context.Context, st *callState, err error) (string, error) {
	switch {
	case errors.Is(err, circuitbreaker.ErrOpen):
		return audit.OutcomeCircuitOpen, bus.Unavailable(ErrCircuitOpen) // a consumer pauses until the vendor is back
	case errors.Is(err, bulkhead.ErrFull):
		return audit.OutcomeBulkheadFull, ErrBulkheadFull
	case errors.Is(err, ratelimiter.ErrExceeded):
		return audit.OutcomeThrottled, ErrThrottled
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return audit.OutcomeCanceled, ctx.Err()
	}
	ae := st.lastErr
	if ae == nil {
		// The budget ran out before any attempt ended (waiting for a permit or a slot).
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, timeout.ErrExceeded) {
			return audit.OutcomeTimeout, ErrTimeout
		}
		return audit.OutcomeError, err
	}
	switch ae.class {
	case ClassPermanent:
		return audit.OutcomePermanent, bus.Permanent(ae.err)
	case ClassRateLimited:
		cause := ae.err
		if d := ae.retryAfter; d > 0 {
			cause = bus.RetryAfter(cause, d)
		}
		return audit.OutcomeRateLimited, cause
	case classTimeout:
		return audit.OutcomeTimeout, ae.err
	case classCanceled:
		// The caller did not cancel (checked above): its budget ran out during the attempt.
		return audit.OutcomeTimeout, ae.err
	}
	return audit.OutcomeError, ae.err
}
