package logistics

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/canary"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Provider string `env:"LOGISTICS_PROVIDER" default:"auto" desc:"which provider answers: auto (SF… numbers → sfexpress, others → cainiao, unless the request names a carrier), sfexpress or cainiao"`
	Canary   string `env:"LOGISTICS_CANARY" desc:"canary rollout of Cainiao for the numbers that go to SF Express, e.g. cainiao:100%;agent=a-17,a-23 (the pilot for two agents: their SF lookups through Cainiao's trace query) or cainiao:10% (by customer); clauses as SMS_CANARY (agent, group, account, margin, min_calls); needs both carriers configured; changed at run time with omnibus canary --target logistics"`

	SFPartnerID string `env:"SF_PARTNER_ID" enable:"true" desc:"SF Express customer code (partnerID); required unless LOGISTICS_PROVIDER=cainiao"`
	SFCheckword string `env:"SF_CHECKWORD" enable:"true" desc:"SF Express check word (客户校验码) for the msgDigest; required with SF_PARTNER_ID"`
	SFAPIBase   string `env:"SF_API_BASE" default:"https://bspgw.sf-express.com" desc:"SF Express API base; the service is POSTed to <base>/std/service (sandbox: https://sfapi-sbox.sf-express.com, omnibus sandbox: http://127.0.0.1:8080/sandbox/sfexpress)"`
	SFLanguage  string `env:"SF_LANGUAGE" default:"zh-CN" desc:"language of SF's route remarks"`
	SFManualURL string `env:"SF_MANUAL_URL" default:"https://www.sf-express.com/chn/sc/waybill/waybill-detail/{no}" desc:"SF's public tracking page, the fallback link of failed lookups ({no} = the waybill)"`

	CainiaoProviderID   string `env:"CAINIAO_PROVIDER_ID" enable:"true" desc:"Cainiao logistic_provider_id; without it (and the secret) numbers routed to Cainiao fail with the manual link"`
	CainiaoSecretKey    string `env:"CAINIAO_SECRET_KEY" enable:"true" desc:"Cainiao secret key for data_digest"`
	CainiaoAPIBase      string `env:"CAINIAO_API_BASE" default:"https://link.cainiao.com" desc:"Cainiao link gateway base; calls go to <base>/gateway/link.do (omnibus sandbox: http://127.0.0.1:8080/sandbox/cainiao)"`
	CainiaoMsgType      string `env:"CAINIAO_MSG_TYPE" default:"TRACEQUERY" desc:"msg_type of the trace query (not in the public docs we have: set it to what your Cainiao account's API page names)"`
	CainiaoSupplierID   string `env:"CAINIAO_SUPPLIER_ID" desc:"supplier_id of the trace query (default: CAINIAO_PROVIDER_ID)"`
	CainiaoDeliveryCode string `env:"CAINIAO_DELIVERY_CODE" desc:"carrier code (delivery_code) for numbers whose prefix does not name one (YT… → YTO, JT… → JTSD, JD… → JD are detected)"`
	CainiaoManualURL    string `env:"CAINIAO_MANUAL_URL" default:"https://global.cainiao.com/newDetail.htm?mailNoList={no}" desc:"Cainiao's public tracking page, the fallback link ({no} = the number)"`

	CacheTTL   time.Duration `env:"LOGISTICS_CACHE_TTL" default:"60s" desc:"how long a route answer is reused without asking the carrier again"`
	CacheStale time.Duration `env:"LOGISTICS_CACHE_STALE" default:"30m" desc:"how long past its TTL a cached route is served when the carrier fails (0: never)"`
	CacheSize  int           `env:"LOGISTICS_CACHE_SIZE" default:"10000" desc:"routes kept in the cache"`

	Budget      time.Duration `env:"LOGISTICS_BUDGET" default:"2s" desc:"time a request may take end to end, retries included; then it is answered with .failed and the manual link"`
	BatchWindow time.Duration `env:"LOGISTICS_BATCH_WINDOW" desc:"how long an SF lookup waits for others to share its route query (at most 10 numbers per call) when the quota allows a call now (default 2ms); above the quota (RESILIENCE_SFEXPRESS_ROUTE_QUERY_RATE_LIMIT, 30/s) lookups join the batch that leaves at the next interval of the rate limit"`
	Concurrency int           `env:"LOGISTICS_CONCURRENCY" default:"64" desc:"requests handled at once (concurrent requests are what batching coalesces)"`
}

// Provider choices of LOGISTICS_PROVIDER.
const (
	ChoiceAuto    = "auto"
	ChoiceSF      = "sfexpress"
	ChoiceCainiao = "cainiao"
)

// variants are the providers a canary rollout chooses between for the numbers routed to SF
// Express: SF itself (the baseline) and Cainiao's trace query, which covers SF waybills too.
var variants = []string{ProviderSF, ProviderCainiao}

func (c *Config) sfEnabled() bool      { return c.SFPartnerID != "" && c.SFCheckword != "" }
func (c *Config) cainiaoEnabled() bool { return c.CainiaoProviderID != "" && c.CainiaoSecretKey != "" }

// Validate checks the configuration with actionable messages.
func (c *Config) Validate() error {
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	if c.Provider == ProviderSF || c.Provider == "sf" {
		c.Provider = ChoiceSF
	}
	var errs []error
	switch c.Provider {
	case ChoiceAuto, ChoiceSF:
		if !c.sfEnabled() {
			errs = append(errs, fmt.Errorf("LOGISTICS_PROVIDER=%s needs SF_PARTNER_ID and SF_CHECKWORD", c.Provider))
		}
	case ChoiceCainiao:
		if !c.cainiaoEnabled() {
			errs = append(errs, errors.New("LOGISTICS_PROVIDER=cainiao needs CAINIAO_PROVIDER_ID and CAINIAO_SECRET_KEY"))
		}
	default:
		errs = append(errs, fmt.Errorf("LOGISTICS_PROVIDER=%q: want auto, sfexpress or cainiao", c.Provider))
	}
	if plan, err := canary.Parse(c.Canary, ProviderSF, variants); err != nil {
		errs = append(errs, fmt.Errorf("LOGISTICS_CANARY: %w", err))
	} else if plan != nil && (!c.sfEnabled() || !c.cainiaoEnabled()) {
		errs = append(errs, errors.New("LOGISTICS_CANARY needs both carriers configured: SF_PARTNER_ID, SF_CHECKWORD, CAINIAO_PROVIDER_ID and CAINIAO_SECRET_KEY"))
	}
	for _, u := range []struct{ name, v string }{{"SF_API_BASE", c.SFAPIBase}, {"CAINIAO_API_BASE", c.CainiaoAPIBase}} {
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http(s) URL", u.name, u.v))
		}
	}
	for _, u := range []struct{ name, v string }{{"SF_MANUAL_URL", c.SFManualURL}, {"CAINIAO_MANUAL_URL", c.CainiaoManualURL}} {
		if !strings.HasPrefix(u.v, "https://") && !strings.HasPrefix(u.v, "http://") {
			errs = append(errs, fmt.Errorf("%s=%q: want an http(s) URL with {no}", u.name, u.v))
		}
	}
	if c.Budget <= 0 {
		errs = append(errs, errors.New("LOGISTICS_BUDGET must be > 0"))
	}
	if c.CacheTTL <= 0 {
		// pkg/cache reads a zero TTL as its default (1 minute): 0 must not pass for "no cache".
		errs = append(errs, errors.New("LOGISTICS_CACHE_TTL must be > 0 (use 1ms to all but turn the cache off)"))
	}
	if c.CacheStale < 0 || c.BatchWindow < 0 {
		errs = append(errs, errors.New("LOGISTICS_CACHE_STALE and LOGISTICS_BATCH_WINDOW must not be negative"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("LOGISTICS_CONCURRENCY must be >= 1"))
	}
	if c.CainiaoSupplierID == "" {
		c.CainiaoSupplierID = c.CainiaoProviderID
	}
	c.SFAPIBase = strings.TrimRight(c.SFAPIBase, "/")
	c.CainiaoAPIBase = strings.TrimRight(c.CainiaoAPIBase, "/")
	return errors.Join(errs...)
}

// manualURL returns the public tracking page of no for provider.
func (c *Config) manualURL(provider, no string) string {
	tmpl := c.CainiaoManualURL
	if provider == ProviderSF {
		tmpl = c.SFManualURL
	}
	return strings.ReplaceAll(tmpl, "{no}", url.PathEscape(no))
}

// providerFor picks the provider of a number: the request's carrier, else LOGISTICS_PROVIDER,
// else the number's prefix.
func (c *Config) providerFor(carrier, no string) string {
	switch strings.ToLower(carrier) {
	case ProviderSF, ChoiceSF, "sf":
		return ProviderSF
	case ProviderCainiao:
		return ProviderCainiao
	}
	switch c.Provider {
	case ChoiceSF:
		return ProviderSF
	case ChoiceCainiao:
		return ProviderCainiao
	}
	if len(no) >= 2 && strings.EqualFold(no[:2], "SF") {
		return ProviderSF
	}
	return ProviderCainiao
}
