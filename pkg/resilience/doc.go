// Package resilience is how omnibus calls third parties: one failsafe-go pipeline per vendor
// route (rate limiter, bulkhead, circuit breaker, per-attempt timeout, retries with backoff for
// idempotent calls, fallback), with one span, metrics, one masked audit record and an alert feed
// per call. A failed call carries the error kinds the bus consumer reads (bus.Permanent,
// bus.RetryAfter, bus.Unavailable), so a handler can return it as it is.
//
// # A connector's calls
//
// Once, when the connector starts — a Registry per service, a Route per vendor operation, with
// the vendor's figures (defaults in DefaultSettings; operators override them per route with
// RESILIENCE_<VENDOR>_<OP>_<SETTING>, see Settings):
//
//	res, err := resilience.New(resilience.Options{Service: "logistics", Bus: d.Bus, Env: d.Env, Log: d.Log})
//	if err != nil {
//		return err
//	}
//	defer res.Close(context.Background()) // flushes the audit records
//	routes := res.MustRoute(resilience.RouteSpec{
//		Vendor: "sfexpress", Op: "route_query", Idempotent: true,
//		Settings: resilience.Settings{RateLimit: 50}, // the vendor's quota for this process
//		CodeOf:   resilience.JSONCode("apiResultCode"),
//		Codes:    resilience.Codes{"A1000": resilience.ClassSuccess, "A1011": resilience.ClassRateLimited},
//		Fallback: func(c resilience.Call, _ error) *resilience.Fallback {
//			return &resilience.Fallback{ManualURL: "https://www.sf-express.com/chn/sc/waybill/waybill-detail/" + c.Key,
//				Note: "顺丰接口暂不可用，请在官网查询运单"}
//		},
//	})
//
// Then per request, about ten lines:
//
//	var answer routeResponse
//	_, err := routes.HTTP(ctx, resilience.Call{CustomerID: req.CustomerID, CorrelationID: ev.ID(), Key: req.Waybill},
//		func(ctx context.Context) (*http.Request, error) { return sf.NewRequest(ctx, cfg, "EXP_RECE_SEARCH_ROUTES", req) },
//		&answer)
//	var fail *resilience.Error
//	switch {
//	case err == nil:
//		return publishCompleted(ctx, ev, answer)
//	case errors.As(err, &fail):
//		return publishFailed(ctx, ev, fail.Code(), fail.Error(), fail.Fallback) // the manual path for the agent
//	}
//	return err
//
// Route.HTTP covers HTTP vendors: it builds the request per attempt (fresh signatures), reads and
// classifies the answer, honours Retry-After and records both bodies. For SDKs and other
// transports, Do takes any function and the function reports what it sent and got on the
// Attempt. Cached puts a read-through cache (pkg/cache) in front of a route, and Batcher
// coalesces concurrent requests into the vendor's batch call.
//
// # What a call does
//
// Policies, outermost first: retry → rate limiter → bulkhead → circuit breaker → timeout → the
// attempt. Every attempt takes a rate-limit permit: the first waits for it (at most MaxWait), a
// retry reserves its permit while it backs off and waits for whichever comes later, so retries
// never push a route over the vendor's quota; a Batcher paced by BatchOptions.Route reserves the
// permit of each batch when it schedules it. Every wait and attempt fits in the caller's budget: ctx's deadline (or Settings.Budget
// when ctx has none), less a small reserve so the answer — or the failure and its fallback —
// reaches the caller before its deadline. An attempt's timeout is Settings.Timeout (300 ms) or
// what is left of the budget, whichever is shorter.
//
// An attempt's answer is classified by the route: RouteSpec.Codes maps the vendor's result codes
// (read by RouteSpec.CodeOf) to ClassSuccess, ClassRetryable, ClassRateLimited or ClassPermanent;
// without a mapped code the HTTP status decides (StatusClass); Classify replaces both. A function
// passed to Do can force a class by returning bus.Permanent(err) or bus.RetryAfter(err, d). Map business
// answers ("no such waybill") to success and read them from the body: failures are what the
// vendor did not serve, and they drive the breaker and the alerts.
//
// Retries: only a route declared Idempotent retries a request that may have reached the vendor
// (timeouts, transport errors, retryable classes, rate limits); a non-idempotent call is retried
// only when its request provably never left (dial and DNS failures) and is otherwise tried once.
// Delays grow from Settings.Backoff, doubling to MaxBackoff with jitter; a rate limit waits
// Retry-After. A retry is made only if the delay plus half an attempt's timeout still fits the
// budget; otherwise the caller gets the failure at once — for a rate limit, wrapped in RetryAfter
// so a bus handler returning it is redelivered after the vendor's wait.
//
// The breaker counts timeouts and retryable failures (not refusals or rate limits): it opens at
// Settings.BreakerRatio of at least BreakerMinCalls attempts within BreakerWindow, rejects calls
// at once for BreakerOpenFor, then lets BreakerProbes probes through and closes when they
// succeed (one failed probe opens it again).
//
// A failed call returns an *Error: its Outcome (one of the audit.Outcome* names), the last HTTP
// status and vendor code, the attempts, the cause and the Fallback of the call or route. It
// matches the outcome's sentinel (ErrTimeout, ErrCircuitOpen, ...), bus.IsPermanent for refusals,
// bus.RetryDelay for rate limits and bus.IsUnavailable for an open breaker.
//
// # Records
//
// Every call made through Do — successful or not, retried or not, even one refused by the breaker
// before sending — produces exactly one audit record (pkg/audit: omni.audit.<service>, bodies
// masked by field name and the pii scanner), published off the caller's path. A cache hit makes
// no call and has no record. Every call also counts in omnibus_vendor_calls_total
// {vendor,op,outcome,code}, omnibus_vendor_call_duration_seconds{vendor,op,outcome} and, for
// fallbacks, omnibus_vendor_fallbacks_total{vendor,op,kind}; omnibus_vendor_breaker_state
// {vendor,op} is 0 closed, 1 half-open, 2 open. A span "vendor <vendor> <op>" (kind client) holds
// an event per failed attempt. Outcomes feed the alert monitor (pkg/alert): a route failing 1 % of
// at least 100 calls over 5 minutes raises omni.ops.alert.raised.
package resilience
