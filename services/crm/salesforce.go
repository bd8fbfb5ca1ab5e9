package crm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/token"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
)

// maxContacts is how many Contacts a lookup reads (newest first; the first one answers).
const maxContacts = 5

// maxResponse bounds a response body read from Salesforce.
const maxResponse = 4 << 20

// salesforce is the Salesforce REST provider: OAuth 2.0 client credentials (token reused until
// SALESFORCE_TOKEN_TTL, refreshed in the background, re-fetched at once after a 401
// INVALID_SESSION_ID) and a SOQL query of Contacts by phone or email.
type salesforce struct {
	cfg      *Config
	http     *http.Client
	cc       clientcredentials.Config
	tokens   *token.Cache
	instance atomic.Pointer[string]
	fields   []string
	// Routes of the resilience pipeline (vendor salesforce): token, query and the start check's
	// describe.
	tokenRoute, queryRoute, describeRoute *resilience.Route
}

// tokenKey is the one key of the token cache (one connected app per connector).
const tokenKey = "salesforce"

// Route specs of the Salesforce calls. Both are reads (the token grant is safe to repeat), so
// both are retried within the caller's budget: five attempts keep a CRM failing one call in five
// from failing more than 0.03 % of lookups (three would fail 0.8 %), and a short backoff (25 ms,
// doubled, with jitter: at most ~375 ms of waiting over four retries) keeps them well within
// CRM_LOOKUP_BUDGET. Operators override them with RESILIENCE_SALESFORCE_{TOKEN,QUERY}_*.
var (
	lookupSettings = resilience.Settings{MaxAttempts: 5, Backoff: 25 * time.Millisecond}
	tokenSpec      = resilience.RouteSpec{Vendor: "salesforce", Op: "token", Idempotent: true, Settings: lookupSettings}
	querySpec      = resilience.RouteSpec{Vendor: "salesforce", Op: "query", Idempotent: true, Classify: classifyREST, Settings: lookupSettings}
)

// classifyREST classifies a REST answer by HTTP status and errorCode: an expired session is
// handled by re-authenticating (not retried by the pipeline), REQUEST_LIMIT_EXCEEDED is a rate
// limit, 5xx are transient, other 4xx refusals.
func classifyREST(status int, code string) resilience.Class {
	switch {
	case status > 0 && status < 400:
		return resilience.ClassSuccess
	case code == sfwire.CodeRequestLimit:
		return resilience.ClassRateLimited
	case code == sfwire.CodeServerUnavailable:
		return resilience.ClassRetryable
	}
	return resilience.StatusClass(status)
}

func newSalesforce(cfg *Config, hc *http.Client, reg *resilience.Registry) (*salesforce, error) {
	tokenRoute, err := reg.Route(tokenSpec)
	if err != nil {
		return nil, err
	}
	queryRoute, err := reg.Route(querySpec)
	if err != nil {
		return nil, err
	}
	describeRoute, err := reg.Route(describeSpec)
	if err != nil {
		return nil, err
	}
	s := &salesforce{cfg: cfg, http: hc, tokenRoute: tokenRoute, queryRoute: queryRoute, describeRoute: describeRoute,
		cc: clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			TokenURL: strings.TrimRight(cfg.LoginURL, "/") + sfwire.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
	s.fields = append([]string{}, sfwire.ContactFields...)
	for _, f := range []string{cfg.MemberField, cfg.VIPField} {
		if f != "" {
			s.fields = append(s.fields, f)
		}
	}
	if cfg.InstanceURL != "" {
		inst := strings.TrimRight(cfg.InstanceURL, "/")
		s.instance.Store(&inst)
	}
	// A token lives TokenTTL; the cache refreshes it in the background before that.
	s.tokens, err = token.New(s.fetchToken, token.WithFetchTimeout(cfg.Budget))
	return s, err
}

func (s *salesforce) Name() string { return "salesforce" }

// ManualURL is the instance's search page, where an agent searches by hand.
func (s *salesforce) ManualURL() string {
	if s.cfg.ManualURL != "" {
		return s.cfg.ManualURL
	}
	base := s.cfg.LoginURL
	if p := s.instance.Load(); p != nil {
		base = *p
	}
	return strings.TrimRight(base, "/") + "/_ui/search/ui/UnifiedSearchResults"
}

// fetchToken gets a token with the client-credentials grant, checks the response's signature and
// remembers the instance URL. Errors: *sfwire.OAuthError (Permanent for invalid_client*) or a
// transport error.
func (s *salesforce) fetchToken(ctx context.Context, _ string) (token.Token, error) {
	tok, err := resilience.Do(ctx, s.tokenRoute, resilience.CallFrom(ctx), func(ctx context.Context, a *resilience.Attempt) (*oauth2.Token, error) {
		a.Request([]byte("grant_type=client_credentials&client_id=" + url.QueryEscape(s.cfg.ClientID)))
		tok, err := s.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, s.http))
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			oe := &sfwire.OAuthError{Code: re.ErrorCode, Description: re.ErrorDescription}
			if oe.Code == "" {
				oe.Code = "http_" + fmt.Sprint(re.Response.StatusCode)
			}
			a.Response(re.Response.StatusCode, re.ErrorCode, re.Body)
			return nil, oe
		}
		if err == nil {
			a.Response(http.StatusOK, "", nil) // the body holds the token: not audited
		}
		return tok, err
	})
	if err != nil {
		return token.Token{}, err
	}
	id, _ := tok.Extra("id").(string)
	issued, _ := tok.Extra("issued_at").(string)
	sig, _ := tok.Extra("signature").(string)
	if s.cfg.VerifyToken {
		if err := sfwire.VerifyTokenSignature(s.cfg.ClientSecret, id, issued, sig); err != nil {
			return token.Token{}, bus.Permanent(err)
		}
	}
	if s.cfg.InstanceURL == "" {
		inst, _ := tok.Extra("instance_url").(string)
		u, err := url.Parse(inst)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return token.Token{}, bus.Permanent(fmt.Errorf("salesforce: token response has no usable instance_url (%q)", inst))
		}
		inst = strings.TrimRight(inst, "/")
		s.instance.Store(&inst)
	}
	return token.Token{Value: tok.AccessToken, TTL: s.cfg.TokenTTL}, nil
}

// Lookup finds the newest Contact of an identity and maps it. A 401 INVALID_SESSION_ID drops the
// token and retries once with a new one.
func (s *salesforce) Lookup(ctx context.Context, q Identity) (Result, error) {
	soql, err := sfwire.ContactQuery(s.fields, q.Kind, q.Value, maxContacts)
	if err != nil {
		return Result{}, bus.Permanent(err)
	}
	for attempt := 0; ; attempt++ {
		tok, err := s.tokens.Get(ctx, tokenKey)
		if err != nil {
			return Result{}, err
		}
		resp, err := s.query(ctx, tok, q, soql)
		if errors.Is(err, sfwire.ErrInvalidSession) && attempt == 0 {
			s.tokens.Reject(tokenKey, tok)
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if len(resp.Records) == 0 {
			return Result{Found: false}, nil
		}
		return mapContact(resp.Records[0], q, s.cfg, s.recordURL(resp.Records[0].String("Id"))), nil
	}
}

func (s *salesforce) recordURL(id string) string {
	p := s.instance.Load()
	if p == nil || id == "" {
		return ""
	}
	return *p + "/lightning/r/Contact/" + id + "/view"
}

// query runs one SOQL query. Errors: a *resilience.Error wrapping *sfwire.Error (401
// INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED, 5xx after the retries, 4xx refusals) or
// ErrMalformedBody, or the pipeline's own outcome (timeout, circuit_open, ...).
func (s *salesforce) query(ctx context.Context, tok string, q Identity, soql string) (*sfwire.QueryResponse, error) {
	p := s.instance.Load()
	if p == nil {
		return nil, errors.New("salesforce: no instance URL yet")
	}
	u := *p + sfwire.QueryPath(s.cfg.APIVersion) + "?q=" + url.QueryEscape(soql)
	// The audit record names the query's shape, never its literals (the phone variants).
	shape := []byte(`{"object":"Contact","by":"` + q.Kind + `","limit":` + fmt.Sprint(maxContacts) + `}`)
	return resilience.Do(ctx, s.queryRoute, resilience.CallFrom(ctx), func(ctx context.Context, a *resilience.Attempt) (*sfwire.QueryResponse, error) {
		a.Request(shape)
		body, err := s.get(ctx, a, tok, u, true)
		if err != nil {
			return nil, err
		}
		out, err := sfwire.ParseQueryResponse(body)
		return out, bus.Permanent(err)
	})
}

// get sends one attempt's GET of u with the bearer token and returns the 200 answer's body,
// reporting the answer on a (its body only when auditBody). Errors: *sfwire.Error for another
// status, transport failures, or a Permanent request that could not be built.
func (s *salesforce) get(ctx context.Context, a *resilience.Attempt, tok, u string, auditBody bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := sfwire.ParseErrors(resp.StatusCode, body)
		a.Response(resp.StatusCode, e.Code, body)
		return nil, e
	}
	if auditBody {
		a.Response(resp.StatusCode, "", body)
	} else {
		a.Response(resp.StatusCode, "", nil)
	}
	return body, nil
}

// mapContact turns a Contact into the lookup result: identities (crm_id, the phones and email of
// the record that normalise, member_id) and profile fields. recordURL, if known, is added as
// crm_url.
func mapContact(rec sfwire.Record, q Identity, cfg *Config, recordURL string) Result {
	r := Result{Found: true, Profile: map[string]string{}}
	add := func(kind, value string) {
		if value == "" {
			return
		}
		for _, id := range r.Identities {
			if id.Kind == kind && id.Value == value {
				return
			}
		}
		r.Identities = append(r.Identities, Identity{Kind: kind, Value: value})
	}
	id := rec.String("Id")
	add("crm_id", id)
	if q.Kind == "phone" {
		add("phone", q.Value) // the record matched it, in whatever format it stores it
	}
	// MobilePhone is personal. Phone is often a shared office line: it is linked only when it is
	// the queried number or a Chinese mobile number (a switchboard would otherwise join every
	// caller of a company).
	if p, ok := sfwire.NormalizePhone(rec.String("MobilePhone"), cfg.PhoneRegion); ok {
		add("phone", p)
	}
	if p, ok := sfwire.NormalizePhone(rec.String("Phone"), cfg.PhoneRegion); ok && cnMobile(p) {
		add("phone", p)
	}
	if email := strings.ToLower(strings.TrimSpace(rec.String("Email"))); strings.Count(email, "@") == 1 && len(email) <= 254 {
		add("email", email)
	}
	if cfg.MemberField != "" {
		add("member_id", strings.TrimSpace(rec.String(cfg.MemberField)))
	}
	for k, v := range map[string]string{
		"name": rec.String("Name"), "company": rec.String("Account.Name"), "title": rec.String("Title"),
		"city": rec.String("MailingCity"), "crm_id": id, "crm_url": recordURL,
	} {
		if v = strings.TrimSpace(v); v != "" {
			r.Profile[k] = truncate(v, 4096)
		}
	}
	if cfg.VIPField != "" {
		if v := strings.TrimSpace(rec.String(cfg.VIPField)); v != "" {
			r.Profile["vip_level"] = truncate(v, 4096)
		}
	}
	if len(r.Identities) > 64 {
		r.Identities = r.Identities[:64]
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8Start(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}

func utf8Start(b byte) bool { return b < 0x80 || b >= 0xC0 }

// cnMobile reports whether an E.164 number is a mainland Chinese mobile number (+861[3-9] and 9
// more digits), which belongs to one person.
func cnMobile(e164 string) bool {
	return len(e164) == 14 && strings.HasPrefix(e164, "+861") && e164[4] >= '3' && e164[4] <= '9'
}
