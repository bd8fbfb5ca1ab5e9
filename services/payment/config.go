package payment

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/wire/alipay"
	"github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Provider  string `env:"PAYMENT_PROVIDER" default:"alipay" desc:"the provider of requests that name none: alipay or wechatpay (a request may name either; the other must then be configured too)"`
	NotifyURL string `env:"PAYMENT_NOTIFY_BASE" desc:"public base URL of this connector's webhooks, where the providers post their notifies: <base>/alipay and <base>/wechatpay (e.g. https://omnibus.example.com/hooks/payment); required"`

	AlipayAppID      string `env:"ALIPAY_APP_ID" enable:"true" desc:"Alipay app_id; required for alipay"`
	AlipayPrivateKey string `env:"ALIPAY_APP_PRIVATE_KEY" desc:"the app private key (RSA2): PEM or the single base64 line Alipay's key tool writes; signs every request"`
	AlipayPublicKey  string `env:"ALIPAY_PUBLIC_KEY" desc:"Alipay's public key (PEM, base64 or its certificate): verifies every response and notify"`
	AlipayGateway    string `env:"ALIPAY_GATEWAY" default:"https://openapi.alipay.com/gateway.do" desc:"the gateway (sandbox: https://openapi-sandbox.dl.alipaydev.com/gateway.do, omnibus sandbox: http://127.0.0.1:8080/sandbox/alipay/gateway.do)"`

	WechatMchID        string        `env:"WECHATPAY_MCH_ID" enable:"true" desc:"WeChat Pay merchant id (mchid); required for wechatpay"`
	WechatAppID        string        `env:"WECHATPAY_APP_ID" desc:"the appid bound to the merchant"`
	WechatPrivateKey   string        `env:"WECHATPAY_MCH_PRIVATE_KEY" desc:"the merchant API private key (apiclient_key.pem, PEM or base64): signs every request"`
	WechatSerial       string        `env:"WECHATPAY_MCH_SERIAL" desc:"serial number of the merchant API certificate (serial_no of the Authorization)"`
	WechatPlatformKey  string        `env:"WECHATPAY_PLATFORM_PUBLIC_KEY" desc:"the WeChat Pay public key or platform certificate (PEM or base64): verifies responses and notifies"`
	WechatPlatformID   string        `env:"WECHATPAY_PLATFORM_SERIAL" desc:"its serial (PUB_KEY_ID_... or the certificate serial); a Wechatpay-Serial naming another is refused"`
	WechatAPIv3Key     string        `env:"WECHATPAY_APIV3_KEY" desc:"the 32-byte APIv3 key: decrypts notify resources"`
	WechatAPIBase      string        `env:"WECHATPAY_API_BASE" default:"https://api.mch.weixin.qq.com" desc:"API v3 base (omnibus sandbox: http://127.0.0.1:8080/sandbox/wechatpay)"`
	WechatPayerIP      string        `env:"WECHATPAY_H5_PAYER_IP" default:"127.0.0.1" desc:"payer_client_ip of H5 orders (the desk does not know the customer's IP; WeChat may refuse an H5 link opened elsewhere, the Native QR always works)"`
	WechatNotifyWindow time.Duration `env:"WECHATPAY_NOTIFY_WINDOW" default:"5m" desc:"how far a notify's or response's Wechatpay-Timestamp may be from now; older ones are refused as replays"`

	Expiry      time.Duration `env:"PAYMENT_EXPIRY" default:"30m" desc:"how long a link can be paid; then the connector closes the trade"`
	QueryAfter  time.Duration `env:"PAYMENT_QUERY_AFTER" default:"2m" desc:"how long after creation an unpaid link is queried at the provider, in case its notify is late or lost"`
	Sweep       time.Duration `env:"PAYMENT_SWEEP" default:"30s" desc:"how often open links are checked (query when the notify is late, close on expiry); 0 turns the sweep off"`
	Budget      time.Duration `env:"PAYMENT_BUDGET" default:"300ms" desc:"time a link request may take end to end, retries included; then it is answered with .failed and a fallback"`
	Concurrency int           `env:"PAYMENT_CONCURRENCY" default:"64" desc:"link requests handled at once"`
}

// Providers.
const (
	ProviderAlipay    = "alipay"
	ProviderWechatPay = "wechatpay"
)

// providerName normalises a provider as requests and config name it.
func providerName(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "alipay", "ali", "zhifubao":
		return ProviderAlipay
	case "wechatpay", "wechat_pay", "wxpay", "wechat", "weixin":
		return ProviderWechatPay
	}
	return strings.ToLower(strings.TrimSpace(s))
}

func (c *Config) alipayEnabled() bool {
	return c.AlipayAppID != "" && c.AlipayPrivateKey != "" && c.AlipayPublicKey != ""
}

func (c *Config) wechatEnabled() bool {
	return c.WechatMchID != "" && c.WechatPrivateKey != "" && c.WechatSerial != "" && c.WechatPlatformKey != "" &&
		c.WechatPlatformID != "" && c.WechatAPIv3Key != ""
}

// keys are the parsed keys.
type keys struct {
	alipayApp      *rsa.PrivateKey
	alipayPublic   *rsa.PublicKey
	wechatMerchant *rsa.PrivateKey
	wechatPlatform *rsa.PublicKey
}

func (c *Config) parseKeys() (keys, error) {
	var k keys
	var errs []error
	if c.alipayEnabled() {
		var err error
		if k.alipayApp, err = alipay.ParsePrivateKey(c.AlipayPrivateKey); err != nil {
			errs = append(errs, fmt.Errorf("ALIPAY_APP_PRIVATE_KEY: %w", err))
		}
		if k.alipayPublic, err = alipay.ParsePublicKey(c.AlipayPublicKey); err != nil {
			errs = append(errs, fmt.Errorf("ALIPAY_PUBLIC_KEY: %w", err))
		}
	}
	if c.wechatEnabled() {
		var err error
		if k.wechatMerchant, err = wechatpay.ParsePrivateKey(c.WechatPrivateKey); err != nil {
			errs = append(errs, fmt.Errorf("WECHATPAY_MCH_PRIVATE_KEY: %w", err))
		}
		if k.wechatPlatform, err = wechatpay.ParsePublicKey(c.WechatPlatformKey); err != nil {
			errs = append(errs, fmt.Errorf("WECHATPAY_PLATFORM_PUBLIC_KEY: %w", err))
		}
	}
	return k, errors.Join(errs...)
}

// Validate checks the configuration with actionable messages.
func (c *Config) Validate() error {
	var errs []error
	c.Provider = providerName(c.Provider)
	switch c.Provider {
	case ProviderAlipay:
		if !c.alipayEnabled() {
			errs = append(errs, errors.New("PAYMENT_PROVIDER=alipay needs ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY and ALIPAY_PUBLIC_KEY"))
		}
	case ProviderWechatPay:
		if !c.wechatEnabled() {
			errs = append(errs, errors.New("PAYMENT_PROVIDER=wechatpay needs WECHATPAY_MCH_ID, WECHATPAY_MCH_PRIVATE_KEY, WECHATPAY_MCH_SERIAL, WECHATPAY_PLATFORM_PUBLIC_KEY, WECHATPAY_PLATFORM_SERIAL and WECHATPAY_APIV3_KEY"))
		}
	default:
		errs = append(errs, fmt.Errorf("PAYMENT_PROVIDER=%q: want alipay or wechatpay%s", c.Provider, config.DidYouMean(c.Provider, []string{ProviderAlipay, ProviderWechatPay})))
	}
	if c.WechatAPIv3Key != "" && len(c.WechatAPIv3Key) != 32 {
		errs = append(errs, fmt.Errorf("WECHATPAY_APIV3_KEY has %d bytes: the APIv3 key is 32 ASCII characters", len(c.WechatAPIv3Key)))
	}
	for _, u := range []struct{ name, v string }{{"PAYMENT_NOTIFY_BASE", c.NotifyURL}, {"ALIPAY_GATEWAY", c.AlipayGateway}, {"WECHATPAY_API_BASE", c.WechatAPIBase}} {
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http(s) URL", u.name, u.v))
		}
	}
	if c.Budget <= 0 || c.Expiry < time.Minute || c.QueryAfter <= 0 || c.Sweep < 0 || c.WechatNotifyWindow <= 0 {
		errs = append(errs, errors.New("PAYMENT_BUDGET, PAYMENT_QUERY_AFTER and WECHATPAY_NOTIFY_WINDOW must be > 0, PAYMENT_EXPIRY >= 1m, PAYMENT_SWEEP >= 0"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("PAYMENT_CONCURRENCY must be >= 1"))
	}
	c.NotifyURL = strings.TrimRight(c.NotifyURL, "/")
	c.WechatAPIBase = strings.TrimRight(c.WechatAPIBase, "/")
	if _, err := c.parseKeys(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
