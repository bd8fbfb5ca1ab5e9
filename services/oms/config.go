package oms

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Config is read from the environment.
type Config struct {
	APIBase   string `env:"OMS_API_BASE" desc:"OMS open API base URL (required; the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/oms)"`
	AppKey    string `env:"OMS_APP_KEY" enable:"true" desc:"OMS app key (required)"`
	AppSecret string `env:"OMS_APP_SECRET" enable:"true" desc:"OMS app secret, the HMAC-SHA256 signing key (required)"`
	ManualURL string `env:"OMS_MANUAL_URL" desc:"where agents look orders up by hand when the OMS is down (the failed event's fallback)"`

	DefaultLimit    int           `env:"OMS_LOOKUP_LIMIT" default:"5" desc:"recent orders returned for a phone when the request names no limit"`
	LookupBudget    time.Duration `env:"OMS_LOOKUP_BUDGET" default:"2s" desc:"time an order lookup may take in total before the failed event is published"`
	ArchiveBudget   time.Duration `env:"OMS_ARCHIVE_BUDGET" default:"5s" desc:"time one delivery's archive call (with the pipeline's retries) may take; a failed delivery is redelivered with backoff"`
	CacheTTL        time.Duration `env:"OMS_CACHE_TTL" default:"30s" desc:"how long an order lookup is served from the cache (orders move: keep it short)"`
	CacheSize       int           `env:"OMS_CACHE_SIZE" default:"10000" desc:"most order lookups cached"`
	StaleIfError    time.Duration `env:"OMS_CACHE_STALE_IF_ERROR" default:"1h" desc:"how long past its TTL a cached lookup is still served (with its as_of time) when the OMS fails"`
	ContextTTL      time.Duration `env:"OMS_CONTEXT_TTL" default:"720h" desc:"how long the orders looked up in a conversation are remembered for archiving its service record"`
	ContextReplicas int           `env:"OMS_CONTEXT_REPLICAS" default:"1" desc:"replicas of the context bucket (3 in a NATS cluster)"`
	Concurrency     int           `env:"OMS_CONCURRENCY" default:"8" desc:"lookups handled at once"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.AppKey == "" || c.AppSecret == "" {
		errs = append(errs, errors.New("OMS_APP_KEY and OMS_APP_SECRET are required"))
	}
	for name, v := range map[string]string{"OMS_API_BASE": c.APIBase, "OMS_MANUAL_URL": c.ManualURL} {
		if v == "" && name == "OMS_MANUAL_URL" {
			continue
		}
		if v == "" {
			errs = append(errs, errors.New("OMS_API_BASE is required: the OMS open API's base URL"))
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("%s %q must be an http(s) URL without a query", name, v))
		}
	}
	if c.DefaultLimit < 1 || c.DefaultLimit > 20 {
		errs = append(errs, fmt.Errorf("OMS_LOOKUP_LIMIT %d must be within 1..20", c.DefaultLimit))
	}
	if c.LookupBudget < 100*time.Millisecond || c.ArchiveBudget < 100*time.Millisecond {
		errs = append(errs, errors.New("OMS_LOOKUP_BUDGET and OMS_ARCHIVE_BUDGET must be at least 100ms"))
	}
	if c.CacheTTL <= 0 || c.CacheSize < 1 || c.StaleIfError < 0 {
		errs = append(errs, errors.New("OMS_CACHE_TTL must be > 0, OMS_CACHE_SIZE >= 1, OMS_CACHE_STALE_IF_ERROR >= 0"))
	}
	if c.ContextTTL < time.Hour {
		errs = append(errs, fmt.Errorf("OMS_CONTEXT_TTL %s must be at least 1h", c.ContextTTL))
	}
	if c.ContextReplicas < 1 || c.ContextReplicas > 5 {
		errs = append(errs, fmt.Errorf("OMS_CONTEXT_REPLICAS %d must be within 1..5", c.ContextReplicas))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("OMS_CONCURRENCY must be >= 1"))
	}
	return errors.Join(errs...)
}
