// Package auth protects the desk and every other API that returns customer data (the audit
// API) with OAuth2 bearer tokens: JWTs signed by an OpenID Connect issuer, checked against its
// JWKS (fetched, cached, refreshed when an unknown key id shows up), the expected issuer and
// audience, and the expiry. The agent id and roles come from claims; each API names the roles
// it accepts (Config.Roles).
//
// It also holds the development issuer (DevIssuer) the all-in-one demo uses so that it needs no
// identity provider: an RSA key generated at start, its JWKS and discovery document, and tokens
// minted for demo agents. It is enabled only by DESK_DEV_LOGIN=true.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Sentinels returned by Verify (wrapped with the detail).
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("invalid token")
	ErrKeys         = errors.New("signing keys unavailable")
)

// Roles the desk knows. agent and supervisor may use the workbench; supervisor may also manage
// agents and transfer any conversation. auditor (and supervisor) may read the audit API.
const (
	RoleAgent      = "agent"
	RoleSupervisor = "supervisor"
	RoleAuditor    = "auditor"
)

// Config says which tokens are accepted.
type Config struct {
	Issuer     string // the iss claim tokens must carry (required)
	Audience   string // a value the aud claim must contain (required)
	JWKSURL    string // where the issuer's keys are; default: from its discovery document
	AgentClaim string // claim holding the agent id; default agent_id, falling back to sub
	RolesClaim string // claim holding the roles (array or space-separated); default roles
	// Roles lists the roles a token must carry one of; default agent and supervisor (the desk).
	Roles  []string
	Leeway time.Duration // clock skew allowed on exp/nbf/iat; default 30s
	Client *http.Client  // for the JWKS and discovery fetches; default 5s timeout
}

// Principal is who a valid token speaks for.
type Principal struct {
	Subject   string    `json:"sub"`
	AgentID   string    `json:"agent_id"`
	Name      string    `json:"name,omitempty"`
	Roles     []string  `json:"roles"`
	ExpiresAt time.Time `json:"expires_at"`
}

// HasRole reports whether p has role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// Verifier checks bearer tokens.
type Verifier struct {
	cfg    Config
	static *jose.JSONWebKeySet // keys given up front (the dev issuer): never fetched

	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time
	lastMiss  time.Time // last fetch caused by an unknown key id
	jwksURL   string
}

// minRefetch bounds how often an unknown key id makes the verifier fetch the JWKS again.
const minRefetch = 30 * time.Second

// keysTTL is how long fetched keys are used before they are fetched again.
const keysTTL = time.Hour

func (c *Config) setDefaults() error {
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("auth: issuer and audience are required")
	}
	if c.AgentClaim == "" {
		c.AgentClaim = "agent_id"
	}
	if c.RolesClaim == "" {
		c.RolesClaim = "roles"
	}
	if len(c.Roles) == 0 {
		c.Roles = []string{RoleAgent, RoleSupervisor}
	}
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 5 * time.Second}
	}
	return nil
}

// NewVerifier returns a verifier that fetches the issuer's keys from cfg.JWKSURL (or the
// jwks_uri of <issuer>/.well-known/openid-configuration) on first use.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg, jwksURL: cfg.JWKSURL}, nil
}

// NewStaticVerifier returns a verifier that trusts exactly keys (e.g. the dev issuer's).
func NewStaticVerifier(cfg Config, keys jose.JSONWebKeySet) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Verifier{cfg: cfg, static: &keys}, nil
}

// Algorithms accepted in tokens (asymmetric only: a shared secret has no place in a JWKS).
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// Verify checks raw and returns its principal. Errors wrap ErrNoToken, ErrInvalidToken or
// ErrKeys (the JWKS could not be fetched).
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, ErrNoToken
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: not a JWT signed with an accepted algorithm: %w", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return Principal{}, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	kid := tok.Headers[0].KeyID
	keys, err := v.keySet(ctx, kid)
	if err != nil {
		return Principal{}, err
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(keys, &std, &all); err != nil {
		return Principal{}, fmt.Errorf("%w: the signature does not verify with the issuer's keys: %w", ErrInvalidToken, err)
	}
	if std.Expiry == nil {
		return Principal{}, fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: time.Now()}, v.cfg.Leeway); err != nil {
		return Principal{}, fmt.Errorf("%w: %s: %w", ErrInvalidToken, claimsProblem(err), err)
	}
	p := Principal{Subject: std.Subject, ExpiresAt: std.Expiry.Time()}
	p.AgentID, _ = all[v.cfg.AgentClaim].(string)
	if p.AgentID == "" {
		p.AgentID = std.Subject
	}
	if p.AgentID == "" {
		return Principal{}, fmt.Errorf("%w: no %s or sub claim", ErrInvalidToken, v.cfg.AgentClaim)
	}
	p.Name, _ = all["name"].(string)
	switch r := all[v.cfg.RolesClaim].(type) {
	case []any:
		for _, x := range r {
			if s, ok := x.(string); ok {
				p.Roles = append(p.Roles, s)
			}
		}
	case string:
		p.Roles = strings.Fields(r)
	}
	if !slices.ContainsFunc(v.cfg.Roles, p.HasRole) {
		return Principal{}, fmt.Errorf("%w: no %s role in claim %s", ErrInvalidToken, strings.Join(v.cfg.Roles, " or "), v.cfg.RolesClaim)
	}
	return p, nil
}

// claimsProblem says in words why the standard claims were refused.
func claimsProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "expired"
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "not valid yet"
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return "issued by another issuer"
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "not issued for this audience"
	}
	return "claims rejected"
}

// keySet returns the keys to check a token signed with kid: the cached set, fetched again when
// stale or when it lacks kid (at most every minRefetch).
func (v *Verifier) keySet(ctx context.Context, kid string) (*jose.JSONWebKeySet, error) {
	if v.static != nil {
		return v.static, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	fresh := v.keys != nil && now.Sub(v.fetchedAt) < keysTTL
	if fresh && (kid == "" || len(v.keys.Key(kid)) > 0) {
		return v.keys, nil
	}
	if fresh {
		// An unknown key id: the issuer may have rotated its keys. Fetch again, at most every
		// minRefetch (forged kids must not make the desk hammer the issuer).
		if now.Sub(v.lastMiss) < minRefetch {
			return v.keys, nil // the signature check fails
		}
		v.lastMiss = now
	}
	keys, err := v.fetch(ctx)
	if err != nil {
		if v.keys != nil {
			return v.keys, nil // keep serving with the keys we have
		}
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	v.keys, v.fetchedAt = keys, now
	return keys, nil
}

func (v *Verifier) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	if v.jwksURL == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.getJSON(ctx, strings.TrimSuffix(v.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if doc.Issuer != v.cfg.Issuer || doc.JWKSURI == "" {
			return nil, fmt.Errorf("discovery: issuer %q with jwks_uri %q does not match %q", doc.Issuer, doc.JWKSURI, v.cfg.Issuer)
		}
		v.jwksURL = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, v.jwksURL, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("jwks %s: no keys", v.jwksURL)
	}
	return &set, nil
}

func (v *Verifier) getJSON(ctx context.Context, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(dst)
}
