package douyin

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is read from the environment.
type Config struct {
	ClientKey    string        `env:"DOUYIN_CLIENT_KEY" enable:"true" desc:"client_key of the app on open.douyin.com (console → the app → basic info); events naming another app are refused (required)"`
	ClientSecret string        `env:"DOUYIN_CLIENT_SECRET" enable:"true" desc:"client_secret of the app: the key of the X-Douyin-Signature webhook signature (required)"`
	AccessToken  string        `env:"DOUYIN_ACCESS_TOKEN" enable:"true" desc:"the enterprise account's access_token (oauth/access_token with the im.direct_message scope), sent as the access-token header of /im/send/msg/ (required)"`
	APIBase      string        `env:"DOUYIN_API_BASE" default:"https://open.douyin.com" desc:"Douyin open API base URL (the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/douyin)"`
	PushBudget   time.Duration `env:"DOUYIN_PUSH_BUDGET" default:"3s" desc:"how long an event waits for JetStream before answering 503 (Douyin drops the connection after 5s and retries)"`
	ReplyWindow  time.Duration `env:"DOUYIN_REPLY_WINDOW" default:"24h" desc:"how long after a user's last message Douyin accepts replies (public integrations say about 24h)"`
	ReplyQuota   int           `env:"DOUYIN_REPLY_QUOTA" default:"6" desc:"replies Douyin accepts per user message before the user writes again (public integrations say about 6)"`
	KVBucket     string        `env:"DOUYIN_KV_BUCKET" default:"douyin" desc:"JetStream key-value bucket holding each user's last message and the replies since (the reply window and quota); <bucket>_seen holds the message ids stored in the last 24h (Douyin's retries)"`
	KVReplicas   int           `env:"DOUYIN_KV_REPLICAS" default:"1" desc:"replicas of the buckets (3 in a NATS cluster)"`
}

var bucketPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the configuration, naming the variable to fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.ClientKey == "" {
		add("DOUYIN_CLIENT_KEY is required (open.douyin.com console → the app's client_key)")
	}
	if c.ClientSecret == "" {
		add("DOUYIN_CLIENT_SECRET is required (open.douyin.com console → the app's client_secret)")
	}
	if c.AccessToken == "" {
		add("DOUYIN_ACCESS_TOKEN is required (the enterprise account's access_token, scope im.direct_message)")
	}
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("DOUYIN_API_BASE %q is not an http(s) URL (default https://open.douyin.com)", c.APIBase)
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.PushBudget <= 0 || c.PushBudget >= 5*time.Second {
		add("DOUYIN_PUSH_BUDGET must be within (0, 5s): Douyin drops an event's connection after 5s, got %s", c.PushBudget)
	}
	if c.ReplyWindow <= 0 {
		add("DOUYIN_REPLY_WINDOW must be > 0, got %s", c.ReplyWindow)
	}
	if c.ReplyQuota < 1 {
		add("DOUYIN_REPLY_QUOTA must be at least 1, got %d", c.ReplyQuota)
	}
	if !bucketPattern.MatchString(c.KVBucket) {
		add("DOUYIN_KV_BUCKET %q: use letters, digits, _ and -", c.KVBucket)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		add("DOUYIN_KV_REPLICAS must be within 1..5, got %d", c.KVReplicas)
	}
	return errors.Join(errs...)
}
