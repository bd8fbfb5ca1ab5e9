// Package logistics is the logistics tool connector: it answers omni.tool.logistics.route.requested
// (one or more tracking numbers) with one omni.tool.logistics.route.completed or .failed per
// number, each with correlationid = the request's id and the deterministic id
// logistics:route:<request id>:<number>, so a redelivered request is answered once.
//
// Providers: SF Express (route query EXP_RECE_SEARCH_ROUTES, signed with the 标准MD5 msgDigest) and
// Cainiao (link gateway trace query, data_digest), both normalised to one timeline shape (Track:
// tracking number, provider, carrier, normalised status, checkpoints newest first with masked
// phones). A number goes to the request's carrier, else LOGISTICS_PROVIDER, else SF when it starts
// with "SF" and Cainiao otherwise.
//
// Every vendor call goes through its pkg/resilience route, sfexpress.route_query or
// cainiao.trace_query (per-attempt timeout within the request's budget, retries — route queries
// are idempotent —, breaker, bulkhead, rate limit, one audit record per call on
// omni.audit.logistics, omnibus_vendor_* metrics). The SF numbers of one request and
// concurrent SF lookups are coalesced by a resilience.Batcher into route queries of up to 10 numbers, paced to SF's quota; answers are
// cached for LOGISTICS_CACHE_TTL and, when the carrier fails, served stale for up to
// LOGISTICS_CACHE_STALE. When nothing can be served the .failed event carries the carrier's public
// tracking page as fallback.manual_url.
package logistics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/cache"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects.
const (
	TypeRequested    = schemas.TypeToolLogisticsRouteRequested
	TypeCompleted    = schemas.TypeToolLogisticsRouteCompleted
	TypeFailed       = schemas.TypeToolLogisticsRouteFailed
	SubjectRequested = TypeRequested
	SubjectCompleted = TypeCompleted
	SubjectFailed    = TypeFailed
	TypeAudit        = audit.TypeCallRecorded
	SubjectAudit     = "omni.audit.logistics"
)

// Routes and the Spec.
var (
	RouteRequested = connector.Route{Subject: SubjectRequested, Type: TypeRequested}
	RouteCompleted = connector.Route{Subject: SubjectCompleted, Type: TypeCompleted}
	RouteFailed    = connector.Route{Subject: SubjectFailed, Type: TypeFailed}
	// Spec declares the connector. Audit records and route alerts are published by its
	// resilience registry.
	Spec = connector.Spec{
		Name:        "logistics",
		Buckets:     []string{canary.BucketName},
		Description: "parcel tracking: SF Express route query and Cainiao trace query, normalised to one timeline",
		Consumes:    []connector.Route{RouteRequested, RouteCanary},
		Produces:    append(append([]connector.Route{RouteCompleted, RouteFailed}, connector.ResilienceRoutes("logistics")...), canaryRoutes()...),
	}
	// RouteCanary carries the operator's rollout commands for target logistics.
	RouteCanary = connector.Route{Subject: canary.SubjectSet(canaryTarget), Type: canary.TypeSet}
)

// canaryTarget is the logistics rollout's target: Cainiao for numbers that go to SF Express.
const canaryTarget = "logistics"

func canaryRoutes() []connector.Route {
	var out []connector.Route
	for _, r := range canary.Produces() {
		out = append(out, connector.Route{Subject: r.Subject, Type: r.Type})
	}
	return out
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// request is the data of omni.tool.logistics.route.requested.
type request struct {
	ConversationID  string   `json:"conversation_id"`
	CustomerID      string   `json:"customer_id,omitempty"`
	TrackingNumber  string   `json:"tracking_number,omitempty"`
	TrackingNumbers []string `json:"tracking_numbers,omitempty"`
	Carrier         string   `json:"carrier,omitempty"`
	CheckPhone      string   `json:"check_phone,omitempty"`
	AgentID         string   `json:"agent_id,omitempty"`
}

func (r request) numbers() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range append([]string{r.TrackingNumber}, r.TrackingNumbers...) {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// completed is the data of omni.tool.logistics.route.completed.
type completed struct {
	ConversationID string `json:"conversation_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	Track
}

// failed is the data of omni.tool.logistics.route.failed.
type failed struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	TrackingNumber string    `json:"tracking_number"`
	Provider       string    `json:"provider"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error"`
	Fallback       *fallback `json:"fallback,omitempty"`
}

type fallback struct {
	ManualURL string `json:"manual_url,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Connector is the running connector: the providers behind their resilience routes, and the
// cache. Tests build one with New and drive Handle directly or through the bus.
type Connector struct {
	cfg    Config
	rt     *connector.Runtime
	sf     *sfProvider
	cn     *cainiaoProvider
	tracks *cache.Cache[string, Track]
	now    func() time.Time
	// canary chooses, for the numbers that go to SF Express, between SF and Cainiao (nil: SF
	// Express is not configured, nothing goes there).
	canary *canary.Rollout
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	c, err := New(ctx, rt, *cfg, Options{})
	if err != nil {
		return err
	}
	// Before taking requests: each carrier accepts the credentials (check.go).
	if err := c.checkCarriers(ctx); err != nil {
		return err
	}
	if cfg.sfEnabled() {
		kv, err := rt.KeyValue(ctx, canary.KVConfig)
		if err != nil {
			return fmt.Errorf("logistics canary bucket: %w", err)
		}
		vs := []string{ProviderSF}
		if cfg.cainiaoEnabled() {
			vs = variants
		}
		c.canary, err = canary.Start(ctx, canary.Options{Target: canaryTarget, Service: "logistics", Source: rt.Source(), Baseline: ProviderSF,
			Variants: vs, Config: cfg.Canary, Publish: rt.Publish, KV: kv, Log: rt.Log})
		if err != nil {
			return fmt.Errorf("LOGISTICS_CANARY: %w", err)
		}
		rt.Go(ctx, "canary", func(ctx context.Context) error {
			<-ctx.Done()
			c.canary.Close()
			return nil
		})
		if err := rt.Consume(ctx, RouteCanary, c.canary.HandleCommand, bus.ConsumerConfig{}); err != nil {
			return err
		}
	}
	return rt.Consume(ctx, RouteRequested, c.Handle, bus.ConsumerConfig{
		Concurrency:   cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency),
		AckWait:       cfg.Budget + 30*time.Second,
	})
}

// Options are the knobs tests set; production uses the zero value.
type Options struct {
	// HTTP is the vendors' HTTP client. Default: one keeping 64 idle connections per host, with
	// no overall timeout (every attempt is bounded by its route's timeout).
	HTTP *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New builds the connector on rt: its providers, whose routes are on rt's resilience registry
// (audit records and alerts on rt's bus, flushed when rt shuts down; route overrides read from
// rt.Env).
func New(ctx context.Context, rt *connector.Runtime, cfg Config, o Options) (*Connector, error) {
	if o.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		o.HTTP = &http.Client{Transport: tr}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Connector{cfg: cfg, rt: rt, now: o.Now}
	c.tracks = cache.New[string, Track](cache.Options{Name: "logistics_route", TTL: cfg.CacheTTL,
		MaxEntries: cfg.CacheSize, StaleIfError: cfg.CacheStale, Now: o.Now, MeterProvider: rt.Meter})
	reg, err := rt.Resilience()
	if err != nil {
		return nil, err
	}
	if cfg.sfEnabled() {
		route, err := reg.Route(sfRoute(cfg))
		if err != nil {
			return nil, err
		}
		c.sf = newSFProvider(cfg, o, route)
		if c.sf.checkRoute, err = reg.Route(checkSpec(sfRoute(cfg))); err != nil {
			return nil, err
		}
	}
	if cfg.cainiaoEnabled() {
		route, err := reg.Route(cainiaoRoute(cfg))
		if err != nil {
			return nil, err
		}
		c.cn = newCainiaoProvider(cfg, o, route)
		if c.cn.checkRoute, err = reg.Route(checkSpec(cainiaoRoute(cfg))); err != nil {
			return nil, err
		}
	} else if cfg.Provider != ChoiceSF {
		rt.Log.Warn("Cainiao is not configured: numbers routed to it fail with the manual tracking link",
			"need", "CAINIAO_PROVIDER_ID, CAINIAO_SECRET_KEY")
	}
	return c, nil
}

// errNotConfigured fails numbers whose provider has no credentials.
var errNotConfigured = errors.New("provider not configured")

// lookup is one number of a request: where it goes and what came back.
type lookup struct {
	no, provider, checkPhone string
	res                      cache.Result[Track]
	err                      error
}

// lookupAll fills in the tracks of ls, from the cache or the carriers: the SF numbers asked
// together share one route query (up to 10 a call) whatever their timing, and each Cainiao
// number is one call, all at once. call names the customer and request for the audit records.
func (c *Connector) lookupAll(ctx context.Context, ls []lookup, call resilience.Call) {
	ctx = resilience.WithCall(ctx, call)
	var sf []int
	var wg sync.WaitGroup
	for i := range ls {
		l := &ls[i]
		key := l.provider + "|" + l.no + "|" + l.checkPhone
		switch {
		case l.provider == ProviderSF && c.sf != nil:
			sf = append(sf, i)
		case l.provider == ProviderCainiao && c.cn != nil:
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.res, l.err = c.cn.lookup(ctx, c.tracks, key, l.no)
			}()
		default:
			l.err = bus.Permanent(fmt.Errorf("%w: %s", errNotConfigured, l.provider))
		}
	}
	if len(sf) > 0 {
		keys := make([]string, len(sf))
		byKey := make(map[string]sfKey, len(sf))
		for j, i := range sf {
			keys[j] = ls[i].provider + "|" + ls[i].no + "|" + ls[i].checkPhone
			byKey[keys[j]] = sfKey{No: ls[i].no, CheckPhone: ls[i].checkPhone}
		}
		res, errs := c.tracks.FetchMany(ctx, keys, func(ctx context.Context, keys []string) ([]Track, []error) {
			ks := make([]sfKey, len(keys))
			for j, k := range keys {
				ks[j] = byKey[k]
			}
			return c.sf.tracks(ctx, ks)
		})
		for j, i := range sf {
			ls[i].res, ls[i].err = res[j], errs[j]
		}
	}
	wg.Wait()
}

// Handle answers one request delivery: one result event per number, published together.
func (c *Connector) Handle(ctx context.Context, d bus.Delivery) error {
	var req request
	if err := event.DecodeData(d.Event, &req); err != nil {
		return bus.Permanent(err)
	}
	nos := req.numbers()
	if len(nos) == 0 {
		return bus.Permanent(errors.New("request names no tracking number"))
	}
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	ls := make([]lookup, len(nos))
	piloted := make([]bool, len(nos)) // routed to SF Express: the canary rollout chose the provider
	for i, no := range nos {
		ls[i] = lookup{no: no, provider: c.cfg.providerFor(req.Carrier, no)}
		if ls[i].provider == ProviderSF && c.canary != nil {
			piloted[i] = true
			ls[i].provider = c.canary.Pick(canary.Request{Key: cmp.Or(req.CustomerID, req.ConversationID), Agent: req.AgentID}).Variant
		}
		if ls[i].provider == ProviderSF {
			ls[i].checkPhone = req.CheckPhone
		}
	}
	start := time.Now()
	c.lookupAll(budget, ls, resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID()})
	took := time.Since(start)
	for i, l := range ls {
		if piloted[i] && !l.res.Hit { // a cache hit says nothing about the carrier
			c.canary.Record(ctx, l.provider, canary.ResultOf(l.err), took)
		}
	}
	out := make([]bus.Outgoing, len(nos))
	errs := make([]error, len(nos))
	for i, l := range ls {
		out[i], errs[i] = c.answer(d.Event, req, l)
	}
	if err := errors.Join(errs...); err != nil {
		return bus.Permanent(err)
	}
	// The budget may be spent: publishing the answers gets its own bound.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer pcancel()
	return c.rt.Publish(pctx, out...)
}

// answer is the result event of one number.
func (c *Connector) answer(req event.Event, data request, l lookup) (bus.Outgoing, error) {
	opts := []event.Option{event.WithID("logistics:route:" + req.ID() + ":" + l.no), event.WithCorrelationID(req.ID())}
	if data.ConversationID != "" {
		opts = append(opts, event.WithSubject(data.ConversationID))
	}
	if pk := event.PartitionKey(req); pk != "" {
		opts = append(opts, event.WithPartitionKey(pk))
	}
	if l.err == nil {
		e, err := c.rt.NewEvent(TypeCompleted, completed{ConversationID: data.ConversationID, CustomerID: data.CustomerID, Track: l.res.Value}, opts...)
		return bus.Outgoing{Subject: SubjectCompleted, Event: e}, err
	}
	code, msg := describe(l.err)
	note := manualNote(l.no)
	if errors.Is(l.err, errNotConfigured) {
		note = "该承运商未接入，请打开官网手动查询运单 " + l.no
	}
	e, err := c.rt.NewEvent(TypeFailed, failed{ConversationID: data.ConversationID, CustomerID: data.CustomerID,
		TrackingNumber: l.no, Provider: l.provider, ErrorCode: code, Error: msg,
		Fallback: &fallback{ManualURL: c.cfg.manualURL(l.provider, l.no), Note: note}}, opts...)
	return bus.Outgoing{Subject: SubjectFailed, Event: e}, err
}

// describe turns a lookup error into the failed event's error_code and error text.
func describe(err error) (code, msg string) {
	msg = err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	code = errorCode(err)
	return code, msg
}
