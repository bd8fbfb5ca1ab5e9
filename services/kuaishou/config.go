package kuaishou

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config is read from the environment.
type Config struct {
	AppKey       string        `env:"KUAISHOU_APP_KEY" enable:"true" desc:"app_key of the app on open.kuaishou.com; when set, events naming another app are refused"`
	AppSecret    string        `env:"KUAISHOU_APP_SECRET" enable:"true" desc:"app secret of the app: the key of the kwaisign webhook signature (required)"`
	MessageEvent string        `env:"KUAISHOU_MESSAGE_EVENT" default:"PRIVATE_MESSAGE" desc:"the webhook event name of a user's private message: not publicly documented; the default is the sandbox's, set it from Kuaishou's partner documentation"`
	PushBudget   time.Duration `env:"KUAISHOU_PUSH_BUDGET" default:"3s" desc:"how long an event waits for JetStream before answering 503 (Kuaishou retries 3 times at 5s intervals)"`
	KVBucket     string        `env:"KUAISHOU_KV_BUCKET" default:"kuaishou" desc:"prefix of the JetStream key-value bucket <bucket>_seen holding the message ids stored in the last 24h (Kuaishou's retries)"`
	KVReplicas   int           `env:"KUAISHOU_KV_REPLICAS" default:"1" desc:"replicas of the bucket (3 in a NATS cluster)"`
}

var (
	bucketPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,58}$`)
	eventPattern  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
)

// Validate checks the configuration, naming the variable to fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.AppSecret == "" {
		add("KUAISHOU_APP_SECRET is required (open.kuaishou.com → the app's app secret)")
	}
	if !eventPattern.MatchString(c.MessageEvent) {
		add("KUAISHOU_MESSAGE_EVENT %q: an event name of letters, digits and _.:-", c.MessageEvent)
	}
	if c.PushBudget <= 0 || c.PushBudget >= 5*time.Second {
		add("KUAISHOU_PUSH_BUDGET must be within (0, 5s), got %s", c.PushBudget)
	}
	if !bucketPattern.MatchString(c.KVBucket) {
		add("KUAISHOU_KV_BUCKET %q: use letters, digits, _ and -", c.KVBucket)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		add("KUAISHOU_KV_REPLICAS must be within 1..5, got %d", c.KVReplicas)
	}
	return errors.Join(errs...)
}
