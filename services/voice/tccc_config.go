package voice

import (
	"fmt"
	"strings"
	"time"
)

// TCCCConfig configures the Tencent Cloud Contact Center provider (VOICE_TCCC_*): off unless
// VOICE_TCCC_SDK_APP_ID is set.
type TCCCConfig struct {
	SdkAppID  int64  `env:"SDK_APP_ID" enable:"true" desc:"Tencent Cloud Contact Center (TCCC) instance id (SdkAppId); 0 turns the TCCC provider off"`
	SecretID  string `env:"SECRET_ID" desc:"Tencent Cloud API SecretId allowed to call ccc DescribeTelCdr (reconciliation)"`
	SecretKey string `env:"SECRET_KEY" desc:"its SecretKey (TC3-HMAC-SHA256 signatures)"`
	APIURL    string `env:"API_URL" default:"https://ccc.tencentcloudapi.com/" desc:"TCCC API 3.0 endpoint (ccc 2020-02-10)"`

	PushAuth          string        `env:"PUSH_AUTH" default:"basic" desc:"how TCCC's data pushes (CDR, recording, voicemail) to /hooks/voice/tccc authenticate, as set in the TCCC console: basic (VOICE_TCCC_PUSH_USER/PASSWORD), oauth2 (client credentials: TCCC fetches a bearer token from /hooks/voice/tccc/token with VOICE_TCCC_OAUTH_CLIENT_ID/SECRET) or none"`
	PushUser          string        `env:"PUSH_USER" desc:"basic-auth user name of the pushes"`
	PushPassword      string        `env:"PUSH_PASSWORD" desc:"basic-auth password of the pushes"`
	OAuthClientID     string        `env:"OAUTH_CLIENT_ID" desc:"OAuth2 client id TCCC presents to the token URL"`
	OAuthClientSecret string        `env:"OAUTH_CLIENT_SECRET" desc:"OAuth2 client secret; it also keys the tokens' HMAC, so every replica accepts every replica's tokens"`
	TokenTTL          time.Duration `env:"OAUTH_TOKEN_TTL" default:"2h" desc:"lifetime of a bearer token issued to TCCC"`

	Reconcile       time.Duration `env:"RECONCILE_INTERVAL" default:"5m" desc:"how often DescribeTelCdr is polled for call records whose push was lost; 0 = never (needs VOICE_TCCC_SECRET_ID/KEY)"`
	ReconcileWindow time.Duration `env:"RECONCILE_WINDOW" default:"2h" desc:"how far back each reconciliation looks (a sliding window ending now, under 90 days)"`

	Transcribe     bool          `env:"TRANSCRIBE" default:"true" desc:"transcribe each call's recording and voicemails after the call with Aliyun recording-file transcription (needs VOICE_ALIYUN_ACCESS_KEY_ID, _SECRET and _APPKEY)"`
	FileTransURL   string        `env:"FILETRANS_URL" default:"https://filetrans.cn-shanghai.aliyuncs.com/" desc:"Aliyun recording-file transcription endpoint (nls-filetrans 2018-08-17)"`
	WorkInterval   time.Duration `env:"WORK_INTERVAL" default:"2s" desc:"how often pending after-call work (recordings to store, transcription tasks to submit or poll) is looked at"`
	MaxAttempts    int           `env:"MAX_ATTEMPTS" default:"12" desc:"attempts at a recording's download or transcription (with backoff up to 5m between them) before it is given up and logged"`
	StateRetention time.Duration `env:"STATE_RETENTION" default:"168h" desc:"how long the connector remembers a TCCC call and push (the deduplication horizon of pushes and reconciliation; longer than VOICE_TCCC_RECONCILE_WINDOW)"`
}

// TCCC push authentication modes.
const (
	pushAuthBasic  = "basic"
	pushAuthOAuth2 = "oauth2"
	pushAuthNone   = "none"
)

func (c *TCCCConfig) enabled() bool { return c.SdkAppID != 0 }

// validate checks the TCCC settings; aliyun says whether the Aliyun credentials are set.
func (c *TCCCConfig) validate(aliyun bool) error {
	if !c.enabled() {
		return nil
	}
	if c.SdkAppID < 0 {
		return fmt.Errorf("VOICE_TCCC_SDK_APP_ID must be the instance's positive SdkAppId, got %d", c.SdkAppID)
	}
	c.PushAuth = strings.ToLower(strings.TrimSpace(c.PushAuth))
	switch c.PushAuth {
	case pushAuthBasic:
		if c.PushUser == "" || c.PushPassword == "" {
			return fmt.Errorf("VOICE_TCCC_PUSH_AUTH=basic needs VOICE_TCCC_PUSH_USER and VOICE_TCCC_PUSH_PASSWORD")
		}
	case pushAuthOAuth2:
		if c.OAuthClientID == "" || len(c.OAuthClientSecret) < 16 {
			return fmt.Errorf("VOICE_TCCC_PUSH_AUTH=oauth2 needs VOICE_TCCC_OAUTH_CLIENT_ID and a VOICE_TCCC_OAUTH_CLIENT_SECRET of at least 16 characters")
		}
		if c.TokenTTL < time.Minute || c.TokenTTL > 24*time.Hour {
			return fmt.Errorf("VOICE_TCCC_OAUTH_TOKEN_TTL must be within 1m..24h, got %s", c.TokenTTL)
		}
	case pushAuthNone:
	default:
		hint := ""
		for _, v := range []string{pushAuthBasic, pushAuthOAuth2, pushAuthNone} {
			if c.PushAuth != "" && strings.HasPrefix(v, c.PushAuth[:1]) {
				hint = fmt.Sprintf(" (did you mean %q?)", v)
			}
		}
		return fmt.Errorf("VOICE_TCCC_PUSH_AUTH must be basic, oauth2 or none, got %q%s", c.PushAuth, hint)
	}
	if c.Reconcile < 0 || c.Reconcile > 0 && c.Reconcile < time.Second {
		return fmt.Errorf("VOICE_TCCC_RECONCILE_INTERVAL must be 0 (off) or at least 1s, got %s", c.Reconcile)
	}
	if c.Reconcile > 0 {
		if c.SecretID == "" || c.SecretKey == "" {
			return fmt.Errorf("VOICE_TCCC_RECONCILE_INTERVAL needs VOICE_TCCC_SECRET_ID and VOICE_TCCC_SECRET_KEY (or set it to 0)")
		}
		if c.ReconcileWindow < c.Reconcile || c.ReconcileWindow >= 90*24*time.Hour {
			return fmt.Errorf("VOICE_TCCC_RECONCILE_WINDOW must cover at least one interval and stay under 90 days, got %s", c.ReconcileWindow)
		}
		if c.StateRetention <= c.ReconcileWindow {
			return fmt.Errorf("VOICE_TCCC_STATE_RETENTION (%s) must be longer than VOICE_TCCC_RECONCILE_WINDOW (%s), or reconciliation republishes calls", c.StateRetention, c.ReconcileWindow)
		}
	}
	for _, u := range []struct{ name, v string }{{"VOICE_TCCC_API_URL", c.APIURL}, {"VOICE_TCCC_FILETRANS_URL", c.FileTransURL}} {
		if !strings.HasPrefix(u.v, "http://") && !strings.HasPrefix(u.v, "https://") {
			return fmt.Errorf("%s must be an http(s):// URL, got %q", u.name, u.v)
		}
	}
	if c.Transcribe && !aliyun {
		return fmt.Errorf("VOICE_TCCC_TRANSCRIBE needs VOICE_ALIYUN_ACCESS_KEY_ID, VOICE_ALIYUN_ACCESS_KEY_SECRET and VOICE_ALIYUN_APPKEY (or set it to false)")
	}
	if c.WorkInterval < 100*time.Millisecond || c.WorkInterval > time.Hour {
		return fmt.Errorf("VOICE_TCCC_WORK_INTERVAL must be within 100ms..1h, got %s", c.WorkInterval)
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("VOICE_TCCC_MAX_ATTEMPTS must be at least 1, got %d", c.MaxAttempts)
	}
	if c.StateRetention < time.Hour {
		return fmt.Errorf("VOICE_TCCC_STATE_RETENTION must be at least 1h, got %s", c.StateRetention)
	}
	return nil
}
