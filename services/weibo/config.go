package weibo

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
	AppSecret   string        `env:"WEIBO_APP_SECRET" enable:"true" desc:"App Secret of the appkey registered in the fan service platform's developer mode: the callback signing key (required)"`
	AccessToken string        `env:"WEIBO_ACCESS_TOKEN" enable:"true" desc:"access_token of the fan service account (fan service → advanced → developer mode), for messages/reply.json (required)"`
	APIBase     string        `env:"WEIBO_API_BASE" default:"https://m.api.weibo.com" desc:"Weibo API base URL (the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/weibo)"`
	Window      time.Duration `env:"WEIBO_SIGNATURE_WINDOW" default:"5m" desc:"accepted clock skew of callback timestamps (milliseconds on the wire); a used nonce is refused for twice as long"`
	PushBudget  time.Duration `env:"WEIBO_PUSH_BUDGET" default:"3s" desc:"how long a push waits for JetStream before answering 503 (Weibo gives up after 5s and retries)"`
	KVBucket    string        `env:"WEIBO_KV_BUCKET" default:"weibo" desc:"JetStream key-value bucket holding each fan's last message time (the 48 h reply window); <bucket>_nonces holds the callback nonces shared by the replicas"`
	KVReplicas  int           `env:"WEIBO_KV_REPLICAS" default:"1" desc:"replicas of the reply-window and nonce buckets (3 in a NATS cluster)"`
}

var bucketPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the configuration, naming the variable to fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.AppSecret == "" {
		add("WEIBO_APP_SECRET is required (open.weibo.com → my apps → the appkey's App Secret)")
	}
	if c.AccessToken == "" {
		add("WEIBO_ACCESS_TOKEN is required (fan service → advanced → developer mode)")
	}
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("WEIBO_API_BASE %q is not an http(s) URL (default https://m.api.weibo.com)", c.APIBase)
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.Window <= 0 {
		add("WEIBO_SIGNATURE_WINDOW must be > 0")
	}
	if c.PushBudget <= 0 || c.PushBudget >= 5*time.Second {
		add("WEIBO_PUSH_BUDGET must be within (0, 5s): Weibo gives up on a push after 5s, got %s", c.PushBudget)
	}
	if !bucketPattern.MatchString(c.KVBucket) {
		add("WEIBO_KV_BUCKET %q: use letters, digits, _ and -", c.KVBucket)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		add("WEIBO_KV_REPLICAS must be within 1..5, got %d", c.KVReplicas)
	}
	return errors.Join(errs...)
}
