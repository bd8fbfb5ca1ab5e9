package crm

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
)

// Providers are the CRMs the connector can front.
var Providers = []string{"salesforce"}

// Config is read from the environment.
type Config struct {
	Provider string `env:"CRM_PROVIDER" default:"salesforce" desc:"the CRM behind the tool: salesforce"`

	LoginURL     string        `env:"SALESFORCE_LOGIN_URL" desc:"My Domain URL the OAuth token is requested from, e.g. https://acme.my.salesforce.com (required: client credentials need the My Domain host, login.salesforce.com refuses them; the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/salesforce)"`
	InstanceURL  string        `env:"SALESFORCE_INSTANCE_URL" desc:"REST API base URL; default: the instance_url of the token response"`
	ClientID     string        `env:"SALESFORCE_CLIENT_ID" enable:"true" desc:"connected app consumer key (required)"`
	ClientSecret string        `env:"SALESFORCE_CLIENT_SECRET" enable:"true" desc:"connected app consumer secret (required)"`
	APIVersion   string        `env:"SALESFORCE_API_VERSION" default:"v60.0" desc:"REST API version"`
	MemberField  string        `env:"SALESFORCE_MEMBER_FIELD" default:"Member_Number__c" desc:"Contact field holding the membership number (linked as member_id); empty to skip"`
	VIPField     string        `env:"SALESFORCE_VIP_FIELD" default:"VIP_Level__c" desc:"Contact field holding the VIP level (profile vip_level); empty to skip"`
	TokenTTL     time.Duration `env:"SALESFORCE_TOKEN_TTL" default:"1h" desc:"how long a token is reused (Salesforce tokens carry no expiry; sessions last 2h by default); a 401 INVALID_SESSION_ID re-authenticates earlier"`
	VerifyToken  bool          `env:"SALESFORCE_VERIFY_TOKEN_SIGNATURE" default:"true" desc:"check the token response's signature (HMAC-SHA256 of id + issued_at with the client secret)"`

	PhoneRegion  string        `env:"CRM_PHONE_REGION" default:"CN" desc:"region national phone numbers in CRM records are read in (CN or US)"`
	Budget       time.Duration `env:"CRM_LOOKUP_BUDGET" default:"2s" desc:"time a lookup may take in total (token, retries, backoff) before the failed event is published"`
	CacheTTL     time.Duration `env:"CRM_CACHE_TTL" default:"10m" desc:"how long a lookup result (found or not) is served from the cache"`
	CacheSize    int           `env:"CRM_CACHE_SIZE" default:"10000" desc:"most lookup results cached"`
	StaleIfError time.Duration `env:"CRM_CACHE_STALE_IF_ERROR" default:"24h" desc:"how long past its TTL a cached result is still served when the CRM fails"`
	Concurrency  int           `env:"CRM_CONCURRENCY" default:"8" desc:"lookups handled at once"`
	ManualURL    string        `env:"CRM_MANUAL_URL" desc:"where agents search the CRM by hand when it is down (the failed event's fallback); default: the instance's search page"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if !slices.Contains(Providers, c.Provider) {
		errs = append(errs, fmt.Errorf("CRM_PROVIDER %q is not one of %s%s", c.Provider, strings.Join(Providers, ", "), config.DidYouMean(c.Provider, Providers)))
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		errs = append(errs, errors.New("SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are required (the connected app's consumer key and secret)"))
	}
	for name, v := range map[string]string{"SALESFORCE_LOGIN_URL": c.LoginURL, "SALESFORCE_INSTANCE_URL": c.InstanceURL, "CRM_MANUAL_URL": c.ManualURL} {
		if v == "" && name != "SALESFORCE_LOGIN_URL" {
			continue
		}
		if v == "" {
			errs = append(errs, errors.New("SALESFORCE_LOGIN_URL is required: the org's My Domain URL, e.g. https://acme.my.salesforce.com (client credentials are refused on login.salesforce.com)"))
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q must be an http(s) URL", name, v))
		}
	}
	if !sfwire.ValidAPIVersion(c.APIVersion) {
		errs = append(errs, fmt.Errorf("SALESFORCE_API_VERSION %q must look like v60.0", c.APIVersion))
	}
	for name, f := range map[string]string{"SALESFORCE_MEMBER_FIELD": c.MemberField, "SALESFORCE_VIP_FIELD": c.VIPField} {
		if f != "" && !sfwire.ValidFieldName(f) {
			errs = append(errs, fmt.Errorf("%s %q is not a Salesforce field API name (e.g. Member_Number__c)", name, f))
		}
	}
	if c.PhoneRegion != "CN" && c.PhoneRegion != "US" {
		errs = append(errs, fmt.Errorf("CRM_PHONE_REGION %q must be CN or US", c.PhoneRegion))
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("SALESFORCE_TOKEN_TTL %s must be at least 1m", c.TokenTTL))
	}
	if c.Budget < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("CRM_LOOKUP_BUDGET %s must be at least 100ms", c.Budget))
	}
	if c.CacheTTL <= 0 || c.CacheSize < 1 || c.StaleIfError < 0 {
		errs = append(errs, errors.New("CRM_CACHE_TTL must be > 0, CRM_CACHE_SIZE >= 1, CRM_CACHE_STALE_IF_ERROR >= 0"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("CRM_CONCURRENCY must be >= 1"))
	}
	return errors.Join(errs...)
}
