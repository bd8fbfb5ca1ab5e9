package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
)

// ErrMisconfigured is wrapped by the start check for a configuration the CRM refuses: the
// connector does not start, and the message names the variable to fix. It wraps
// connector.ErrMisconfigured, the sentinel of every connector's start check.
var ErrMisconfigured = fmt.Errorf("crm: %w", connector.ErrMisconfigured)

// checkBudget bounds the start check (a token and a describe, with their retries).
const checkBudget = 15 * time.Second

// describeSpec is the route of the start check's describe call (audited like the others).
var describeSpec = resilience.RouteSpec{Vendor: "salesforce", Op: "describe", Idempotent: true, Classify: classifyREST, Settings: lookupSettings}

// check verifies the configuration against the org before the connector takes requests: the
// client credentials get a token (SALESFORCE_CLIENT_ID/SECRET, SALESFORCE_LOGIN_URL), and the
// Contact describe has every field the lookup selects, readable by the connected app's user.
//
// A standard field that is missing, a custom field the operator named (SALESFORCE_MEMBER_FIELD,
// SALESFORCE_VIP_FIELD set in env), refused credentials or an API version the org does not serve
// fail with ErrMisconfigured and the variables to fix. A custom field left at its default
// that the org does not have is dropped from the lookups with a warning: its value is optional,
// and every query naming it would fail with INVALID_FIELD. When the CRM cannot be reached
// (network, 5xx, timeout) the check is skipped with a warning: an outage is not a configuration
// error, and lookups fail over to the manual path until it ends.
func (s *salesforce) check(ctx context.Context, env config.Lookup, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkBudget)
	defer cancel()
	tok, err := s.tokens.Get(ctx, tokenKey)
	if err != nil {
		var oe *sfwire.OAuthError
		switch {
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			return err
		case errors.As(err, &oe) && strings.HasPrefix(oe.Code, "invalid_client"):
			return fmt.Errorf("%w: %s refused SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET: %s (%s); check the connected app's consumer key and secret",
				ErrMisconfigured, s.cc.TokenURL, oe.Code, oe.Description)
		case errors.As(err, &oe) && grantRefused(oe.Code):
			return fmt.Errorf("%w: %s refused the client-credentials grant: %s (%s); check SALESFORCE_LOGIN_URL (the org's My Domain URL) and that the connected app enables the client credentials flow with a run-as user",
				ErrMisconfigured, s.cc.TokenURL, oe.Code, oe.Description)
		case errors.Is(err, sfwire.ErrTokenSignature):
			return fmt.Errorf("%w: the token response's signature does not match SALESFORCE_CLIENT_SECRET (or set SALESFORCE_VERIFY_TOKEN_SIGNATURE=false behind a proxy that re-signs)", ErrMisconfigured)
		}
		log.Warn("salesforce unreachable at start: configuration not checked; lookups fail over to the manual path until it answers", "err", err)
		return nil
	}
	d, err := s.describe(ctx, tok)
	if err != nil {
		var se *sfwire.Error
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Code != sfwire.CodeRequestLimit {
			hint := ""
			if se.Status == http.StatusNotFound {
				hint = fmt.Sprintf("; is SALESFORCE_API_VERSION=%s served by the org, and may the connected app's user see Contacts?", s.cfg.APIVersion)
			}
			return fmt.Errorf("%w: describe Contact: %w%s", ErrMisconfigured, err, hint)
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		log.Warn("salesforce describe failed at start: Contact fields not checked", "err", err)
		return nil
	}
	return s.checkFields(d, env, log)
}

// grantRefused reports whether an OAuth error code of the token endpoint refuses the grant
// itself (a configuration to fix), not a passing state such as temporarily_unavailable.
func grantRefused(code string) bool {
	switch code {
	case sfwire.OAuthInvalidGrant, sfwire.OAuthUnsupportedType, sfwire.OAuthInvalidRequest, "unauthorized_client", "invalid_scope":
		return true
	}
	return strings.HasPrefix(code, "http_4") // no OAuth body: a 404 is not a token endpoint
}

// checkFields checks the describe against the fields the lookup selects (see check).
func (s *salesforce) checkFields(d *sfwire.Describe, env config.Lookup, log *slog.Logger) error {
	var errs []error
	if missing := d.Missing(sfwire.ContactFields...); len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%w: Contact has no field %s readable by the connected app's user (missing, or hidden by field-level security): grant read access to it",
			ErrMisconfigured, strings.Join(missing, ", ")))
	}
	custom := []struct {
		env   string
		field *string
	}{{"SALESFORCE_MEMBER_FIELD", &s.cfg.MemberField}, {"SALESFORCE_VIP_FIELD", &s.cfg.VIPField}}
	for _, c := range custom {
		f := *c.field
		if f == "" || d.Has(f) {
			continue
		}
		if _, set := env(c.env); set {
			errs = append(errs, fmt.Errorf("%w: %s=%s: Contact has no field %s readable by the connected app's user (missing, or hidden by field-level security)%s; name an existing field or set it empty to do without",
				ErrMisconfigured, c.env, f, f, config.DidYouMean(f, d.FieldNames())))
			continue
		}
		log.Warn("salesforce: Contact has no field "+f+" (the default of "+c.env+"): lookups go on without it; set "+c.env+" to the org's field, or to empty to silence this",
			"field", f, "variable", c.env)
		*c.field = ""
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.fields = append(s.fields[:0], sfwire.ContactFields...)
	for _, f := range []string{s.cfg.MemberField, s.cfg.VIPField} {
		if f != "" {
			s.fields = append(s.fields, f)
		}
	}
	return nil
}

// describe gets the Contact describe. Errors: as query's.
func (s *salesforce) describe(ctx context.Context, tok string) (*sfwire.Describe, error) {
	p := s.instance.Load()
	if p == nil {
		return nil, errors.New("salesforce: no instance URL yet")
	}
	u := *p + sfwire.DescribePath(s.cfg.APIVersion, "Contact")
	return resilience.Do(ctx, s.describeRoute, resilience.CallFrom(ctx), func(ctx context.Context, a *resilience.Attempt) (*sfwire.Describe, error) {
		a.Request([]byte(`{"object":"Contact"}`))
		body, err := s.get(ctx, a, tok, u, false) // the org's schema, not a customer's data: not audited in full
		if err != nil {
			return nil, err
		}
		out, err := sfwire.ParseDescribe(body)
		return out, bus.Permanent(err)
	})
}
