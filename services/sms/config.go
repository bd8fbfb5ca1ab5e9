package sms

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/config"
)

// Providers are the SMS vendors the connector speaks.
var providers = []string{ProviderAliyun, ProviderTencent}

// Provider names (SMS_PROVIDER).
const (
	ProviderAliyun  = "aliyun"
	ProviderTencent = "tencent"
)

// Config is read from the environment. Only the chosen provider's block is required; the other
// provider's block, when set, makes it a variant a canary rollout can send through.
type Config struct {
	Provider string `env:"SMS_PROVIDER" enable:"true" desc:"the SMS vendor: aliyun or tencent (required); the baseline of a canary rollout"`
	APIBase  string `env:"SMS_API_BASE" desc:"API base URL of SMS_PROVIDER's vendor (SMS_<PROVIDER>_API_BASE overrides it); default https://dysmsapi.aliyuncs.com (aliyun) or https://sms.tencentcloudapi.com (tencent); the sandbox is http://<host>/sandbox/<provider>"`
	Canary   string `env:"SMS_CANARY" desc:"canary rollout of the other provider, e.g. tencent:10% (10 % of customers, by a stable hash of their number, sent through Tencent); clauses ;account=<sign>,... ;agent=<agent_id>,... ;margin=<points>% (rollback when the candidate fails that much more than SMS_PROVIDER, default 5%) ;min_calls=<n> (default 20); the candidate's block (SMS_<PROVIDER>_*) is required; off or empty: none. Operators change it at run time with omni.ops.canary.set.requested (README: Canary rollout)"`

	Timeout       time.Duration `env:"SMS_API_TIMEOUT" default:"5s" desc:"timeout of one SendSms call"`
	DefaultRegion string        `env:"SMS_DEFAULT_REGION" default:"CN" desc:"region of phone numbers written without a country code (CN, HK, MO, TW, SG, US or GB)"`
	MaxTextRunes  int           `env:"SMS_MAX_TEXT_RUNES" default:"500" desc:"longest agent reply sent (characters); longer replies get a failed status text_too_long"`

	WebhookToken    string   `env:"SMS_WEBHOOK_TOKEN" desc:"secret the push URLs configured in the vendor console carry as ?token=<value> (16+ characters); this or SMS_WEBHOOK_ALLOW_IPS is required, both may be set"`
	WebhookAllowIPs []string `env:"SMS_WEBHOOK_ALLOW_IPS" desc:"addresses or CIDR prefixes allowed to push (the vendor's push egress ranges), checked against the TCP peer"`

	StateTTL       time.Duration `env:"SMS_STATE_TTL" default:"72h" desc:"how long sends and pushes are remembered (JetStream KV bucket omnibus_sms): receipt → send matching, no second send on redelivery, push de-duplication beyond JetStream's window"`
	SendMaxDeliver int           `env:"SMS_SEND_MAX_DELIVER" default:"6" desc:"attempts of one send command; when a transient vendor error (throttling) outlasts them, a failed status with the vendor code is published"`
	SendBackoff    []string      `env:"SMS_SEND_BACKOFF" default:"5s,30s,2m,10m,30m" desc:"waits between attempts of a send command (the last repeats)"`

	Aliyun  AliyunConfig  `envprefix:"SMS_ALIYUN_"`
	Tencent TencentConfig `envprefix:"SMS_TENCENT_"`

	backoff  []time.Duration
	variants []string // the configured providers, SMS_PROVIDER first
}

// blockSet reports whether any variable of provider p's block is set.
func (c *Config) blockSet(p string) bool {
	if p == ProviderAliyun {
		a := c.Aliyun
		return a.AccessKeyID != "" || a.AccessKeySecret != "" || a.SignName != "" || a.TemplateCode != "" || a.APIBase != ""
	}
	t := c.Tencent
	return t.SecretID != "" || t.SecretKey != "" || t.SdkAppID != "" || t.SignName != "" || t.TemplateID != "" || t.APIBase != ""
}

// validateProvider checks provider p's block and fills its API base.
func (c *Config) validateProvider(p string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	why := "with SMS_PROVIDER=" + p
	if p != c.Provider {
		why = "to send through " + p + " (SMS_CANARY or a canary rollout)"
	}
	required := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			bad("%s is required %s", name, why)
		}
	}
	base := &c.Aliyun.APIBase
	switch p {
	case ProviderAliyun:
		a := c.Aliyun
		required("SMS_ALIYUN_ACCESS_KEY_ID", a.AccessKeyID)
		required("SMS_ALIYUN_ACCESS_KEY_SECRET", a.AccessKeySecret)
		required("SMS_ALIYUN_SIGN_NAME", a.SignName)
		if !aliyunTemplate.MatchString(a.TemplateCode) {
			bad("SMS_ALIYUN_TEMPLATE_CODE=%q: want an approved template code such as SMS_154950909", a.TemplateCode)
		}
		if !paramName.MatchString(a.TemplateParam) {
			bad("SMS_ALIYUN_TEMPLATE_PARAM=%q: want the template variable's name, e.g. content for ${content}", a.TemplateParam)
		}
	case ProviderTencent:
		t := c.Tencent
		base = &c.Tencent.APIBase
		required("SMS_TENCENT_SECRET_ID", t.SecretID)
		required("SMS_TENCENT_SECRET_KEY", t.SecretKey)
		required("SMS_TENCENT_SIGN_NAME", t.SignName)
		if !numeric.MatchString(t.SdkAppID) {
			bad("SMS_TENCENT_SDK_APP_ID=%q: want the numeric SmsSdkAppId, e.g. 1400006666", t.SdkAppID)
		}
		if !numeric.MatchString(t.TemplateID) {
			bad("SMS_TENCENT_TEMPLATE_ID=%q: want the numeric template id", t.TemplateID)
		}
		if !slices.Contains(tencentRegions, t.Region) {
			bad("SMS_TENCENT_REGION=%q: want one of %s%s", t.Region, strings.Join(tencentRegions, ", "), config.DidYouMean(t.Region, tencentRegions))
		}
	}
	name := "SMS_" + strings.ToUpper(p) + "_API_BASE"
	if *base == "" && p == c.Provider && c.APIBase != "" {
		*base, name = c.APIBase, "SMS_API_BASE"
	}
	if *base == "" {
		*base = "https://" + map[string]string{ProviderAliyun: aliyunHost, ProviderTencent: tencentHost}[p]
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("%s=%q: want an http(s) URL without query, e.g. https://%s", name, *base, map[string]string{ProviderAliyun: aliyunHost, ProviderTencent: tencentHost}[p])
	}
	*base = strings.TrimRight(*base, "/")
	if p == c.Provider {
		c.APIBase = *base
	}
	return errs
}

// Variants are the configured providers, SMS_PROVIDER first (set by Validate).
func (c *Config) Variants() []string { return c.variants }

// AliyunConfig is the Aliyun SMS (Dysmsapi) account.
type AliyunConfig struct {
	APIBase         string `env:"API_BASE" desc:"Aliyun's API base URL when it is not SMS_PROVIDER (a canary candidate); default SMS_API_BASE for SMS_PROVIDER=aliyun, else https://dysmsapi.aliyuncs.com"`
	AccessKeyID     string `env:"ACCESS_KEY_ID" enable:"true" desc:"AccessKey ID of a RAM user allowed dysms:SendSms"`
	AccessKeySecret string `env:"ACCESS_KEY_SECRET" desc:"its AccessKey secret"`
	SignName        string `env:"SIGN_NAME" desc:"approved SMS signature (签名); a send command's account overrides it"`
	TemplateCode    string `env:"TEMPLATE_CODE" desc:"approved template (SMS_...) with one variable that carries the agent's text, e.g. 您好，${content}"`
	TemplateParam   string `env:"TEMPLATE_PARAM" default:"content" desc:"name of that template variable"`
}

// TencentConfig is the Tencent Cloud SMS account.
type TencentConfig struct {
	APIBase    string `env:"API_BASE" desc:"Tencent's API base URL when it is not SMS_PROVIDER (a canary candidate); default SMS_API_BASE for SMS_PROVIDER=tencent, else https://sms.tencentcloudapi.com"`
	SecretID   string `env:"SECRET_ID" enable:"true" desc:"API SecretId (AKID...)"`
	SecretKey  string `env:"SECRET_KEY" desc:"its SecretKey"`
	SdkAppID   string `env:"SDK_APP_ID" desc:"SMS application id (SmsSdkAppId, 1400...)"`
	SignName   string `env:"SIGN_NAME" desc:"approved SMS signature (签名内容); a send command's account overrides it"`
	TemplateID string `env:"TEMPLATE_ID" desc:"approved template id whose single parameter {1} carries the agent's text"`
	Region     string `env:"REGION" default:"ap-guangzhou" desc:"API region (X-TC-Region): ap-guangzhou, ap-beijing or ap-nanjing"`
}

var (
	aliyunTemplate = regexp.MustCompile(`^SMS_[0-9]+$`)
	paramName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	numeric        = regexp.MustCompile(`^[0-9]{1,20}$`)
	tencentRegions = []string{"ap-guangzhou", "ap-beijing", "ap-nanjing"}
)

// Validate checks the configuration and fills the provider's default API base.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Provider {
	case ProviderAliyun, ProviderTencent:
	case "":
		bad("SMS_PROVIDER is required: aliyun or tencent")
	default:
		bad("SMS_PROVIDER=%q is not a provider (aliyun, tencent)%s", c.Provider, config.DidYouMean(c.Provider, providers))
	}
	plan, err := canary.Parse(c.Canary, c.Provider, providers)
	if err != nil {
		bad("SMS_CANARY: %v", err)
	}
	c.variants = nil
	for _, p := range providers {
		switch {
		case p == c.Provider, plan != nil && p == plan.Candidate:
			// required
		case !c.blockSet(p):
			continue // not configured: not a variant
		}
		errs = append(errs, c.validateProvider(p)...)
		c.variants = append(c.variants, p)
	}
	if _, ok := regionCodes[c.DefaultRegion]; !ok {
		bad("SMS_DEFAULT_REGION=%q: want one of CN, HK, MO, TW, SG, US, GB", c.DefaultRegion)
	}
	if c.WebhookToken == "" && len(c.WebhookAllowIPs) == 0 {
		bad("set SMS_WEBHOOK_TOKEN or SMS_WEBHOOK_ALLOW_IPS: the vendors sign nothing they push, so the webhooks need a secret or a source allow-list")
	}
	if c.WebhookToken != "" && len(c.WebhookToken) < 16 {
		bad("SMS_WEBHOOK_TOKEN must be at least 16 characters")
	}
	if strings.ContainsAny(c.WebhookToken, " &#?/%+") {
		bad("SMS_WEBHOOK_TOKEN must be URL-safe (no space, &, #, ?, /, %%, +): it goes into the push URL's query")
	}
	for _, a := range c.WebhookAllowIPs {
		if _, err := parsePrefix(a); err != nil {
			bad("SMS_WEBHOOK_ALLOW_IPS: %q is neither an IP address nor a CIDR prefix", a)
		}
	}
	if c.Timeout <= 0 {
		bad("SMS_API_TIMEOUT must be positive")
	}
	if c.MaxTextRunes < 1 || c.MaxTextRunes > 10000 {
		bad("SMS_MAX_TEXT_RUNES must be within 1..10000")
	}
	if c.StateTTL < time.Hour {
		bad("SMS_STATE_TTL must be at least 1h (receipts and re-pushes arrive hours later)")
	}
	if c.SendMaxDeliver < 1 {
		bad("SMS_SEND_MAX_DELIVER must be >= 1")
	}
	c.backoff = c.backoff[:0]
	for _, s := range c.SendBackoff {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad("SMS_SEND_BACKOFF: %q is not a positive duration", s)
			continue
		}
		c.backoff = append(c.backoff, d)
	}
	return errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
