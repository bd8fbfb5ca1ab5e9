package wechatkf

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// Config is read from the environment.
type Config struct {
	CorpID         string        `env:"WECHATKF_CORP_ID" enable:"true" desc:"WeCom corp id: the callbacks' receive id and gettoken's corpid (required)"`
	Secret         string        `env:"WECHATKF_SECRET" enable:"true" desc:"secret of the 微信客服 app, for gettoken (required)"`
	Token          string        `env:"WECHATKF_TOKEN" enable:"true" desc:"callback Token from the WeCom console, 1..32 letters and digits (required)"`
	AESKey         string        `env:"WECHATKF_AES_KEY" enable:"true" desc:"callback EncodingAESKey from the WeCom console, 43 characters (required)"`
	APIBase        string        `env:"WECHATKF_API_BASE" default:"https://qyapi.weixin.qq.com" desc:"WeCom API base URL (the all-in-one's sandbox: http://127.0.0.1:8080/sandbox/wecom)"`
	OpenKfID       string        `env:"WECHATKF_OPEN_KFID" desc:"kf account (open_kfid) to send from when a send command names no account; also pulled at start"`
	SceneKey       string        `env:"WECHATKF_SCENE_KEY" desc:"key (>= 16 bytes) the business app signs scene_param phones with; empty: no scene_param ever becomes a phone identity"`
	Window         time.Duration `env:"WECHATKF_SIGNATURE_WINDOW" default:"5m" desc:"accepted clock skew of callback timestamps"`
	SyncLimit      int           `env:"WECHATKF_SYNC_LIMIT" default:"1000" desc:"messages asked for per kf/sync_msg page (1..1000)"`
	CallbackBudget time.Duration `env:"WECHATKF_CALLBACK_BUDGET" default:"3s" desc:"how long a callback pulls before answering WeCom (which gives up after 5s); the rest is pulled in the background"`
	KVBucket       string        `env:"WECHATKF_KV_BUCKET" default:"wechatkf" desc:"JetStream key-value bucket holding the sync_msg cursor of each kf account"`
	KVReplicas     int           `env:"WECHATKF_KV_REPLICAS" default:"1" desc:"replicas of the cursor bucket (3 in a NATS cluster)"`
}

var (
	tokenPattern  = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)
	kfIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	bucketPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Validate checks the configuration, naming the variable to fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.CorpID == "" {
		add("WECHATKF_CORP_ID is required (WeCom admin console → My Company → Corp ID, ww...)")
	}
	if c.Secret == "" {
		add("WECHATKF_SECRET is required (WeCom admin console → 微信客服 → API → Secret)")
	}
	if !tokenPattern.MatchString(c.Token) {
		add("WECHATKF_TOKEN must be the callback Token: 1..32 letters and digits, got %d characters", len(c.Token))
	}
	if _, err := wecom.DecodeAESKey(c.AESKey); err != nil {
		add("WECHATKF_AES_KEY must be the callback EncodingAESKey (43 characters of base64): %w", err)
	}
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("WECHATKF_API_BASE %q is not an http(s) URL (default %s)", c.APIBase, wecom.DefaultAPIBase)
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.OpenKfID != "" && !kfIDPattern.MatchString(c.OpenKfID) {
		add("WECHATKF_OPEN_KFID %q is not an open_kfid (letters, digits, _ and -, e.g. wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q)", c.OpenKfID)
	}
	if c.SceneKey != "" && len(c.SceneKey) < 16 {
		add("WECHATKF_SCENE_KEY must be at least 16 bytes (it authenticates customers' phones), got %d", len(c.SceneKey))
	}
	if c.Window <= 0 {
		add("WECHATKF_SIGNATURE_WINDOW must be > 0")
	}
	if c.SyncLimit < 1 || c.SyncLimit > wecom.MaxSyncLimit {
		add("WECHATKF_SYNC_LIMIT must be within 1..%d, got %d", wecom.MaxSyncLimit, c.SyncLimit)
	}
	if c.CallbackBudget <= 0 || c.CallbackBudget >= 5*time.Second {
		add("WECHATKF_CALLBACK_BUDGET must be within (0, 5s): WeCom gives up on a callback after 5s, got %s", c.CallbackBudget)
	}
	if !bucketPattern.MatchString(c.KVBucket) {
		add("WECHATKF_KV_BUCKET %q: use letters, digits, _ and -", c.KVBucket)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		add("WECHATKF_KV_REPLICAS must be within 1..5, got %d", c.KVReplicas)
	}
	return errors.Join(errs...)
}
