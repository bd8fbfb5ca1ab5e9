package sentiment

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	analysis "github.com/omnibus-dev/omnibus/pkg/sentiment"
)

// Providers SENTIMENT_PROVIDER may name.
const (
	ProviderTencent = "tencent"
	ProviderAliyun  = "aliyun"
	ProviderBuiltin = "builtin"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Provider string `env:"SENTIMENT_PROVIDER" default:"builtin" desc:"who scores messages: tencent (Tencent Cloud NLP AnalyzeSentiment), aliyun (Aliyun NLP GetSaChGeneral) or builtin (pkg/sentiment, in process); a vendor that is down or not configured falls back to builtin, and the score says so"`
	APIBase  string `env:"SENTIMENT_API_BASE" desc:"the vendor's endpoint; default https://nlp.tencentcloudapi.com (tencent) or https://alinlp.cn-hangzhou.aliyuncs.com (aliyun); the omnibus sandbox: http://127.0.0.1:8080/sandbox/tencentnlp or /sandbox/alinlp"`

	TencentSecretID  string `env:"SENTIMENT_TENCENT_SECRET_ID" desc:"Tencent Cloud SecretId (TC3-HMAC-SHA256), for SENTIMENT_PROVIDER=tencent"`
	TencentSecretKey string `env:"SENTIMENT_TENCENT_SECRET_KEY" desc:"its SecretKey"`
	TencentRegion    string `env:"SENTIMENT_TENCENT_REGION" default:"ap-guangzhou" desc:"X-TC-Region of AnalyzeSentiment calls"`

	AliyunAccessKeyID     string `env:"SENTIMENT_ALIYUN_ACCESS_KEY_ID" desc:"Aliyun AccessKeyId (RPC signature V1, HMAC-SHA1), for SENTIMENT_PROVIDER=aliyun"`
	AliyunAccessKeySecret string `env:"SENTIMENT_ALIYUN_ACCESS_KEY_SECRET" desc:"its AccessKeySecret"`

	Budget      time.Duration `env:"SENTIMENT_BUDGET" default:"300ms" desc:"time the vendor may take for one message, retries included; then the built-in analyser scores it"`
	Concurrency int           `env:"SENTIMENT_CONCURRENCY" default:"8" desc:"messages scored at once (messages of one conversation are taken one at a time)"`

	Window int     `env:"SENTIMENT_WINDOW" default:"3" desc:"customer turns whose mean score decides a conversation's episode"`
	Enter  float64 `env:"SENTIMENT_ENTER" default:"-0.4" desc:"an alert is raised when the mean falls below this (or a turn escalates: 投诉, 12315, \"speak to your manager\")"`
	Leave  float64 `env:"SENTIMENT_LEAVE" default:"-0.1" desc:"the alert is cleared when the mean rises above this (must be above SENTIMENT_ENTER)"`
	Spike  float64 `env:"SENTIMENT_SPIKE" default:"-0.8" desc:"one customer turn scoring at or below this raises the alert whatever the mean (a furious turn after a calm opening); -1 turns it off"`

	EpisodeTTL time.Duration `env:"SENTIMENT_EPISODE_TTL" default:"720h" desc:"how long a quiet conversation's episode state is kept (JetStream KV bucket sentiment_episodes)"`
}

// Validate checks the configuration with actionable messages. A vendor named without its
// credentials is not an error: the connector scores with the built-in analyser and says why.
func (c *Config) Validate() error {
	var errs []error
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	switch c.Provider {
	case ProviderTencent, ProviderAliyun, ProviderBuiltin:
	default:
		hint := ""
		for _, p := range []string{ProviderTencent, ProviderAliyun, ProviderBuiltin} {
			if strings.HasPrefix(p, c.Provider) || strings.HasPrefix(c.Provider, p[:3]) {
				hint = fmt.Sprintf(" (did you mean %s?)", p)
			}
		}
		errs = append(errs, fmt.Errorf("SENTIMENT_PROVIDER=%q: want tencent, aliyun or builtin%s", c.Provider, hint))
	}
	if c.APIBase != "" {
		if p, err := url.Parse(c.APIBase); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("SENTIMENT_API_BASE=%q: want an http(s) URL", c.APIBase))
		}
		c.APIBase = strings.TrimRight(c.APIBase, "/")
	}
	if c.Budget <= 0 || c.Budget > time.Minute {
		errs = append(errs, errors.New("SENTIMENT_BUDGET must be within (0, 1m]"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("SENTIMENT_CONCURRENCY must be >= 1"))
	}
	if err := c.tracker().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("SENTIMENT_WINDOW/ENTER/LEAVE: %w", err))
	}
	if c.EpisodeTTL < time.Hour {
		errs = append(errs, errors.New("SENTIMENT_EPISODE_TTL must be >= 1h"))
	}
	return errors.Join(errs...)
}

func (c *Config) tracker() analysis.TrackerConfig {
	return analysis.TrackerConfig{Window: c.Window, Enter: c.Enter, Leave: c.Leave, Spike: c.Spike}
}

// configured reports whether the named vendor has its credentials; the reason says what is
// missing.
func (c *Config) configured() (ok bool, reason string) {
	switch c.Provider {
	case ProviderTencent:
		if c.TencentSecretID == "" || c.TencentSecretKey == "" {
			return false, "not configured: SENTIMENT_TENCENT_SECRET_ID and SENTIMENT_TENCENT_SECRET_KEY are unset"
		}
	case ProviderAliyun:
		if c.AliyunAccessKeyID == "" || c.AliyunAccessKeySecret == "" {
			return false, "not configured: SENTIMENT_ALIYUN_ACCESS_KEY_ID and SENTIMENT_ALIYUN_ACCESS_KEY_SECRET are unset"
		}
	default:
		return false, ""
	}
	return true, ""
}
