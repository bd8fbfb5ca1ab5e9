// Package crm is the CRM tool connector. It consumes omni.tool.crm.lookup.requested (published by
// the unifier when a phone or email is linked to a customer), looks the identity up in the CRM
// through the route's resilience pipeline, and answers with omni.tool.crm.lookup.completed — the
// record's identities (crm_id, phones, email, member_id) and profile fields (name, company, title,
// city, vip_level, crm_id, crm_url), which the unifier links and merges with source
// crm:<provider> — or, when the CRM cannot answer within CRM_LOOKUP_BUDGET, with
// omni.tool.crm.lookup.failed naming the manual path; the unifier then goes on without it.
//
// Lookups are cached by normalised identity (pkg/cache): a hit does not reach the CRM, concurrent
// misses of one identity make one call, and a result past its TTL is still served for
// CRM_CACHE_STALE_IF_ERROR when the CRM fails. Every call to the CRM (token and query) leaves one
// masked audit record on omni.audit.crm.
//
// At start the connector checks its configuration against the CRM (check.go): refused
// credentials, a missing standard field or a custom field the operator named that the org does
// not have stop it with a message naming the variable; a default custom field the org lacks is
// dropped with a warning.
//
// Providers: salesforce (OAuth 2.0 client credentials, SOQL over REST; see salesforce.go).
package crm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/cache"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects.
const (
	TypeRequested = schemas.TypeToolCrmLookupRequested
	TypeCompleted = schemas.TypeToolCrmLookupCompleted
	TypeFailed    = schemas.TypeToolCrmLookupFailed
)

var (
	RouteRequested = connector.Route{Subject: TypeRequested, Type: TypeRequested}
	RouteCompleted = connector.Route{Subject: TypeCompleted, Type: TypeCompleted}
	RouteFailed    = connector.Route{Subject: TypeFailed, Type: TypeFailed}
	// Spec declares the connector. Audit records and route alerts are published by its
	// resilience registry.
	Spec = connector.Spec{
		Name:        "crm",
		Description: "CRM lookups (Salesforce): identity → record identities and profile, cached, with a manual fallback",
		Consumes:    []connector.Route{RouteRequested},
		Produces:    append([]connector.Route{RouteCompleted, RouteFailed}, connector.ResilienceRoutes("crm")...),
	}
)

// Identity is a customer identity as the events carry it.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Request is the data of omni.tool.crm.lookup.requested.
type Request struct {
	CustomerID     string   `json:"customer_id"`
	ConversationID string   `json:"conversation_id,omitempty"`
	Query          Identity `json:"query"`
}

// Answer is the data of omni.tool.crm.lookup.completed and .failed.
type Answer struct {
	CustomerID     string            `json:"customer_id"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Query          Identity          `json:"query"`
	Provider       string            `json:"provider"`
	Found          *bool             `json:"found,omitempty"`
	Identities     []Identity        `json:"identities,omitempty"`
	Profile        map[string]string `json:"profile,omitempty"`
	ErrorCode      string            `json:"error_code,omitempty"`
	Error          string            `json:"error,omitempty"`
	Fallback       *Fallback         `json:"fallback,omitempty"`
}

// Fallback is what an agent can do when the lookup failed.
type Fallback struct {
	ManualURL string `json:"manual_url,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Result is what a provider found.
type Result struct {
	Found      bool
	Identities []Identity
	Profile    map[string]string
}

// Provider is one CRM.
type Provider interface {
	// Name is the provider's name in events (provider) and identity sources (crm:<name>).
	Name() string
	// Lookup finds the record of a normalised phone or email identity. Found false is an
	// answer, not an error.
	Lookup(ctx context.Context, q Identity) (Result, error)
	// ManualURL is where an agent searches the CRM by hand.
	ManualURL() string
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

type lookup struct {
	rt       *connector.Runtime
	cfg      *Config
	provider Provider
	results  *cache.Cache[Identity, Result]
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		Proxy: http.ProxyFromEnvironment}}
	sf, err := newSalesforce(cfg, hc, reg)
	if err != nil {
		return err
	}
	// Before taking requests: the credentials get a token and Contact has the fields selected.
	env := rt.Env
	if env == nil {
		env = os.LookupEnv
	}
	if err := sf.check(ctx, env, rt.Log); err != nil {
		return err
	}
	l := &lookup{rt: rt, cfg: cfg, provider: sf,
		results: cache.New[Identity, Result](cache.Options{Name: "crm_lookup", TTL: cfg.CacheTTL,
			MaxEntries: cfg.CacheSize, StaleIfError: cfg.StaleIfError, MeterProvider: rt.Meter})}
	return rt.Consume(ctx, RouteRequested, l.handle, bus.ConsumerConfig{Concurrency: cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency)})
}

// ErrQuery is wrapped for a query the CRM cannot be asked (not a phone or email, or malformed).
var ErrQuery = errors.New("unsupported lookup query")

// normalize checks and normalises a query: phones to E.164, emails to lower case.
func normalize(q Identity, region string) (Identity, error) {
	switch q.Kind {
	case "phone":
		p, ok := sfwire.NormalizePhone(q.Value, region)
		if !ok {
			return q, fmt.Errorf("%w: the phone is not a valid number", ErrQuery)
		}
		return Identity{Kind: "phone", Value: p}, nil
	case "email":
		e := strings.ToLower(strings.TrimSpace(q.Value))
		at := strings.LastIndexByte(e, '@')
		if at < 1 || at == len(e)-1 || len(e) > 254 || strings.ContainsAny(e, " \t\r\n") {
			return q, fmt.Errorf("%w: the email is not an address", ErrQuery)
		}
		return Identity{Kind: "email", Value: e}, nil
	}
	return q, fmt.Errorf("%w: kind %q (only phone and email)", ErrQuery, q.Kind)
}

// handle answers one lookup request. The answer's id derives from the request's, so a redelivered
// request publishes nothing new; only a failed publish makes the bus redeliver.
func (l *lookup) handle(ctx context.Context, d bus.Delivery) error {
	var req Request
	if err := event.DecodeData(d.Event, &req); err != nil {
		return bus.Permanent(err)
	}
	ans := Answer{CustomerID: req.CustomerID, ConversationID: req.ConversationID, Query: req.Query, Provider: l.provider.Name()}
	q, err := normalize(req.Query, l.cfg.PhoneRegion)
	if err == nil {
		bctx, cancel := context.WithTimeout(resilience.WithCall(ctx, resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID()}), l.cfg.Budget)
		var res cache.Result[Result]
		res, err = l.results.Fetch(bctx, q, func(ctx context.Context, q Identity) (Result, error) {
			return l.provider.Lookup(ctx, q)
		})
		cancel()
		if err == nil {
			found := res.Value.Found
			ans.Found, ans.Identities, ans.Profile = &found, res.Value.Identities, res.Value.Profile
			if res.Stale {
				l.rt.Log.WarnContext(ctx, "CRM failed, served a cached record", "request", d.Event.ID(),
					"age", res.Age.Round(time.Second), "err", redact(res.LoadErr))
			}
		}
	}
	typ, subject := TypeCompleted, TypeCompleted
	if err != nil {
		typ, subject = TypeFailed, TypeFailed
		ans.ErrorCode, ans.Error = describe(err, l.cfg.Budget)
		ans.Fallback = &Fallback{ManualURL: l.provider.ManualURL(), Note: "CRM 暂时无法查询，请在 CRM 中手动搜索该客户 / CRM unavailable: search the customer by hand"}
		l.rt.Log.WarnContext(ctx, "CRM lookup failed", "request", d.Event.ID(), "kind", req.Query.Kind,
			"code", ans.ErrorCode, "err", redact(err))
	}
	e, err := l.rt.NewEvent(typ, ans, event.WithID(d.Event.ID()+":answer"), event.WithCorrelationID(d.Event.ID()),
		event.WithSubject(req.CustomerID), event.WithPartitionKey(event.PartitionKey(d.Event)))
	if err != nil {
		return bus.Permanent(err)
	}
	return l.rt.Publish(ctx, bus.Outgoing{Subject: subject, Event: e})
}

// describe turns a lookup error into the failed event's error_code and error (no personal data).
func describe(err error, budget time.Duration) (code, msg string) {
	var sfe *sfwire.Error
	var oe *sfwire.OAuthError
	switch {
	case errors.Is(err, ErrQuery):
		return "unsupported_query", redact(err)
	case errors.As(err, &sfe):
		return sfe.Code, fmt.Sprintf("Salesforce answered HTTP %d %s", sfe.Status, sfe.Code)
	case errors.As(err, &oe):
		return oe.Code, "Salesforce refused the connector's credentials (" + oe.Code + ")"
	case errors.Is(err, sfwire.ErrTokenSignature):
		return "token_signature", "the Salesforce token response's signature does not match the client secret"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", fmt.Sprintf("the CRM did not answer within %s", budget)
	}
	var re *resilience.Error
	if errors.As(err, &re) {
		return re.Code(), redact(err)
	}
	return "unavailable", redact(err)
}

// redact removes personal data from an error text (vendor messages may quote the query).
func redact(err error) string {
	if err == nil {
		return ""
	}
	s := pii.Redact(err.Error())
	if len(s) > 2000 {
		s = s[:2000]
	}
	return strings.ToValidUTF8(s, "")
}
