package sandbox

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/sandbox/alinlp"
	alipaysim "github.com/omnibus-dev/omnibus/services/sandbox/alipay"
	"github.com/omnibus-dev/omnibus/services/sandbox/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/cainiao"
	"github.com/omnibus-dev/omnibus/services/sandbox/douyin"
	"github.com/omnibus-dev/omnibus/services/sandbox/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/jira"
	"github.com/omnibus-dev/omnibus/services/sandbox/kuaishou"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	omssim "github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	sfsim "github.com/omnibus-dev/omnibus/services/sandbox/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/sfexpress"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencentnlp"
	"github.com/omnibus-dev/omnibus/services/sandbox/webchatsim"
	wxpaysim "github.com/omnibus-dev/omnibus/services/sandbox/wechatpay"
	"github.com/omnibus-dev/omnibus/services/sandbox/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/weibo"
	"github.com/omnibus-dev/omnibus/services/sandbox/zendesk"
)

// vendor mounts one simulator on env and returns the customer channel it offers (nil if none).
type vendor struct {
	name  string
	mount func(ctx context.Context, env *sim.Env, cfg *Config, lookup config.Lookup) (sim.Channel, error)
}

// The simulators read the connectors' own credential variables: the sandbox plays the vendor
// that issued them, so one setting configures both sides (the all-in-one sets them to the
// sandbox's values below unless they are set; docker-compose passes the same values to both
// containers).
func get(lookup config.Lookup, key, def string) string {
	if v, ok := lookup(key); ok && v != "" {
		return v
	}
	return def
}

// Sandbox credentials: what the all-in-one configures the connectors with.
var Credentials = map[string]string{
	"SALESFORCE_CLIENT_ID": "3MVG9OmnibusSandbox", "SALESFORCE_CLIENT_SECRET": "sandbox-salesforce-secret",
	"OMS_APP_KEY": "omnibus-sandbox", "OMS_APP_SECRET": "sandbox-oms-secret",
	"SMS_PROVIDER":             "aliyun",
	"SMS_ALIYUN_ACCESS_KEY_ID": "LTAI5tSandboxAliyunSms01", "SMS_ALIYUN_ACCESS_KEY_SECRET": "sandbox-aliyun-access-key-secret",
	"SMS_ALIYUN_SIGN_NAME": "omnibus", "SMS_ALIYUN_TEMPLATE_CODE": "SMS_000001",
	"SMS_TENCENT_SECRET_ID": "AKIDsandboxTencentSms0000000000000000", "SMS_TENCENT_SECRET_KEY": "sandbox-tencent-secret-key",
	"SMS_TENCENT_SDK_APP_ID": "1400000000", "SMS_TENCENT_SIGN_NAME": "omnibus", "SMS_TENCENT_TEMPLATE_ID": "100001",
	"SMS_WEBHOOK_TOKEN": "sandbox-sms-webhook-token-0001",
	"WEBCHAT_SECRET":    "sandbox-webchat-secret-0001",
	"WECHATKF_CORP_ID":  "wwOmnibusSandbox01", "WECHATKF_SECRET": "sandbox-kf-secret",
	"WECHATKF_TOKEN": "OmnibusSandbox", "WECHATKF_AES_KEY": "lM7/Yv3UOFPG++ipKh3A7ho3Yo6FvJGmMXxfyociK4s",
	"WECHATKF_SCENE_KEY": "sandbox-scene-key-0001", "WECHATKF_OPEN_KFID": "wkSandboxKf0000000000000000000001",
	"WEIBO_APP_SECRET": "sandbox-weibo-app-secret", "WEIBO_ACCESS_TOKEN": "2.00SandboxWeiboAccessToken0001",
	"DOUYIN_CLIENT_KEY": "awOmnibusSandbox0001", "DOUYIN_CLIENT_SECRET": "sandbox-douyin-client-secret", "DOUYIN_ACCESS_TOKEN": "act.SandboxDouyinAccessToken0001",
	"KUAISHOU_APP_KEY": "ks_omnibus_sandbox_app", "KUAISHOU_APP_SECRET": "sandbox-kuaishou-app-secret",
	"SF_PARTNER_ID": "OMNIBUS_SANDBOX", "SF_CHECKWORD": "sandbox-checkword",
	"CAINIAO_PROVIDER_ID": "OMNIBUS_SANDBOX", "CAINIAO_SECRET_KEY": "sandbox-secret",
	"JIRA_EMAIL": "bot@omnibus.local", "JIRA_API_TOKEN": "sandbox-jira-token", "JIRA_WEBHOOK_SECRET": "sandbox-jira-hook",
	"ASSIST_API_KEY": "sk-sandbox-omnibus-assist",
	"ZENDESK_EMAIL":  "bot@omnibus.local", "ZENDESK_API_TOKEN": "sandbox-zendesk-token", "ZENDESK_WEBHOOK_SECRET": "sandbox-zendesk-hook",
	"VOICE_IFLYTEK_APP_ID": "5f0a1b2c", "VOICE_IFLYTEK_API_KEY": "sandbox-iflytek-rtasr-api-key",
	"VOICE_ALIYUN_ACCESS_KEY_ID": "LTAI5tSandboxAliyunNls01", "VOICE_ALIYUN_ACCESS_KEY_SECRET": "sandbox-aliyun-nls-secret",
	"VOICE_ALIYUN_APPKEY":   "sandboxNlsAppKey01",
	"VOICE_TCCC_SDK_APP_ID": "1400000001", "VOICE_TCCC_SECRET_ID": "AKIDsandboxTencentCcc000000000000000",
	"VOICE_TCCC_SECRET_KEY": "sandbox-tencent-ccc-secret-key", "VOICE_TCCC_PUSH_USER": "tccc-push",
	"VOICE_TCCC_PUSH_PASSWORD":    "sandbox-tccc-push-password",
	"SENTIMENT_PROVIDER":          "tencent",
	"SENTIMENT_TENCENT_SECRET_ID": "AKIDsandboxTencentNlp000000000000000", "SENTIMENT_TENCENT_SECRET_KEY": "sandbox-tencent-nlp-secret-key",
	"SENTIMENT_ALIYUN_ACCESS_KEY_ID": "LTAI5tSandboxAliyunNlp01", "SENTIMENT_ALIYUN_ACCESS_KEY_SECRET": "sandbox-aliyun-nlp-access-key-secret",
}

// ConnectorEnv is the configuration that points every connector at a sandbox served at base:
// its API bases and the credentials the sandbox's vendors issued. The all-in-one and the bench
// overlay it on their environment (variables set there win).
func ConnectorEnv(base string) map[string]string {
	env := map[string]string{
		"EXAMPLE_API_BASE":     base + "/sandbox/example",
		"SANDBOX_HOOK_BASE":    base + "/hooks",
		"SANDBOX_APP_BASE":     base,
		"WECHATKF_API_BASE":    base + "/sandbox/wecom",
		"WEIBO_API_BASE":       base + "/sandbox/weibo",
		"DOUYIN_API_BASE":      base + "/sandbox/douyin",
		"SF_API_BASE":          base + "/sandbox/sfexpress",
		"CAINIAO_API_BASE":     base + "/sandbox/cainiao",
		"TICKET_PROVIDER":      "jira",
		"DESK_DEV_LOGIN":       "true",
		"DESK_PUBLIC_URL":      base,
		"DESK_AGENTS":          "demo",
		"SALESFORCE_LOGIN_URL": base + "/sandbox/salesforce",
		"OMS_API_BASE":         base + "/sandbox/oms",
		"SMS_API_BASE":         base + "/sandbox/" + cmp.Or(os.Getenv("SMS_PROVIDER"), Credentials["SMS_PROVIDER"]),
		// Both SMS providers are configured, so a canary rollout (SMS_CANARY) sends through either.
		"SMS_ALIYUN_API_BASE":  base + "/sandbox/aliyun",
		"SMS_TENCENT_API_BASE": base + "/sandbox/tencent",
		"JIRA_BASE_URL":        base + "/sandbox/jira",
		"ZENDESK_API_BASE":     base + "/sandbox/zendesk",
		"ASSIST_API_BASE":      base + "/sandbox/openai/v1",
		// Calls are transcribed live by the simulated iFlytek, Aliyun NLS taking over.
		"VOICE_ASR":              "iflytek",
		"VOICE_IFLYTEK_URL":      wsBase(base) + "/sandbox/iflytek/v1/ws",
		"VOICE_ALIYUN_TOKEN_URL": base + "/sandbox/nls/meta/",
		"VOICE_ALIYUN_NLS_URL":   wsBase(base) + "/sandbox/nls/ws/v1",
		"VOICE_ALIYUN_TTS_URL":   base + "/sandbox/nls/stream/v1/tts", // prompts played into calls
		// The simulated Tencent Cloud Contact Center: pushes, DescribeTelCdr, recordings; their
		// transcripts come from the simulated Aliyun recording-file transcription.
		"SANDBOX_BASE":                  base,
		"VOICE_TCCC_API_URL":            base + "/sandbox/tccc/",
		"VOICE_TCCC_FILETRANS_URL":      base + "/sandbox/nls/filetrans/",
		"VOICE_TCCC_RECONCILE_INTERVAL": "30s",
		"SENTIMENT_API_BASE":            base + "/sandbox/" + sentimentVendor(cmp.Or(os.Getenv("SENTIMENT_PROVIDER"), Credentials["SENTIMENT_PROVIDER"])),
		"ALIPAY_GATEWAY":                base + "/sandbox/alipay/gateway.do",
		"WECHATPAY_API_BASE":            base + "/sandbox/wechatpay",
		"PAYMENT_NOTIFY_BASE":           base + "/hooks/payment",
	}
	for k, v := range Credentials {
		env[k] = v
	}
	return env
}

// wsBase is the WebSocket URL of an http(s) base.
func wsBase(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(base, "http://")
}

// sentimentVendor is the simulator of a sentiment connector's SENTIMENT_PROVIDER.
func sentimentVendor(provider string) string {
	if provider == "aliyun" {
		return alinlp.Vendor
	}
	return tencentnlp.Vendor
}

// cred reads a credential the way the connector does, defaulting to the sandbox's.
func cred(lookup config.Lookup, key string) string { return get(lookup, key, Credentials[key]) }

// credLookup is lookup with the sandbox's credentials as defaults.
func credLookup(l config.Lookup) config.Lookup {
	return func(k string) (string, bool) { v := cred(l, k); return v, v != "" }
}

// vendors is every simulator the sandbox runs.
var vendors = []vendor{
	// The CRM and the order system know the simulated population (most of it).
	{"salesforce", func(_ context.Context, env *sim.Env, cfg *Config, l config.Lookup) (sim.Channel, error) {
		_, err := sfsim.New(env, sfsim.Config{ClientID: cred(l, "SALESFORCE_CLIENT_ID"), ClientSecret: cred(l, "SALESFORCE_CLIENT_SECRET"),
			Customers: cfg.Customers, Seed: uint64(cfg.Seed), HiddenFields: cfg.SalesforceHidden})
		return nil, err
	}},
	{"oms", func(_ context.Context, env *sim.Env, cfg *Config, l config.Lookup) (sim.Channel, error) {
		_, err := omssim.New(env, omssim.Config{AppKey: cred(l, "OMS_APP_KEY"), AppSecret: cred(l, "OMS_APP_SECRET"),
			Customers: cfg.Customers, Seed: uint64(cfg.Seed)})
		return nil, err
	}},
	// Both SMS vendors are simulated; the one named by SMS_PROVIDER offers the customers' phones.
	{"aliyun", func(ctx context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		return mountSMS(ctx, env, l, aliyun.Vendor, aliyun.New, func(c aliyun.Config) string { return c.Provider })
	}},
	{"tencent", func(ctx context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		return mountSMS(ctx, env, l, tencent.Vendor, tencent.New, func(c tencent.Config) string { return c.Provider })
	}},
	{"webchat", func(ctx context.Context, env *sim.Env, cfg *Config, l config.Lookup) (sim.Channel, error) {
		// With the connector's secret the visitors keep their ids across runs.
		ch, err := webchatsim.New(ctx, cfg.AppBase, env, webchatsim.Options{Secret: cred(l, "WEBCHAT_SECRET"), Log: env.Log})
		if err != nil {
			return nil, err
		}
		return ch, nil // the customers' browsers: sim.Channel "webchat"
	}},
	{"wecom", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		s, err := wecom.New(env, wecom.Config{CorpID: cred(l, "WECHATKF_CORP_ID"), Secret: cred(l, "WECHATKF_SECRET"),
			Token: cred(l, "WECHATKF_TOKEN"), EncodingAESKey: cred(l, "WECHATKF_AES_KEY"),
			SceneKey: cred(l, "WECHATKF_SCENE_KEY"), OpenKfID: cred(l, "WECHATKF_OPEN_KFID")})
		if err != nil {
			return nil, err
		}
		return s, nil // the customers' WeChat: sim.Channel "wechatkf"
	}},
	{"weibo", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		s, err := weibo.New(env, weibo.Config{AppSecret: cred(l, "WEIBO_APP_SECRET"), AccessToken: cred(l, "WEIBO_ACCESS_TOKEN")})
		if err != nil {
			return nil, err
		}
		return s, nil // the customers' Weibo: sim.Channel "weibo"
	}},
	{"douyin", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		s, err := douyin.New(env, douyin.Config{ClientKey: cred(l, "DOUYIN_CLIENT_KEY"), ClientSecret: cred(l, "DOUYIN_CLIENT_SECRET"),
			AccessToken: cred(l, "DOUYIN_ACCESS_TOKEN")})
		if err != nil {
			return nil, err
		}
		return s, nil // the customers' Douyin: sim.Channel "douyin"
	}},
	{"kuaishou", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		s, err := kuaishou.New(env, kuaishou.Config{AppKey: cred(l, "KUAISHOU_APP_KEY"), AppSecret: cred(l, "KUAISHOU_APP_SECRET"),
			MessageEvent: get(l, "KUAISHOU_MESSAGE_EVENT", "")})
		if err != nil {
			return nil, err
		}
		return s, nil // the customers' Kuaishou: sim.Channel "kuaishou"
	}},
	{"sfexpress", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := sfexpress.New(env, sfexpress.Config{PartnerID: cred(l, "SF_PARTNER_ID"), Checkword: cred(l, "SF_CHECKWORD")})
		return nil, err
	}},
	{"cainiao", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := cainiao.New(env, cainiao.Config{ProviderID: cred(l, "CAINIAO_PROVIDER_ID"), SecretKey: cred(l, "CAINIAO_SECRET_KEY")})
		return nil, err
	}},
	{"jira", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := jira.New(env, jira.Config{Email: cred(l, "JIRA_EMAIL"), APIToken: cred(l, "JIRA_API_TOKEN"), WebhookSecret: cred(l, "JIRA_WEBHOOK_SECRET")})
		return nil, err
	}},
	{"openai", func(_ context.Context, env *sim.Env, c *Config, l config.Lookup) (sim.Channel, error) {
		_, err := openai.New(env, openai.Config{APIKey: cred(l, "ASSIST_API_KEY"), ChunkDelay: c.OpenAIChunkDelay})
		return nil, err
	}},
	// Real-time speech recognition for the voice connector: both vendors recognise the
	// catalogue of package speech.
	{"iflytek", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := iflytek.New(env, iflytek.Config{AppID: cred(l, "VOICE_IFLYTEK_APP_ID"), APIKey: cred(l, "VOICE_IFLYTEK_API_KEY")})
		return nil, err
	}},
	{"nls", func(ctx context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		s, err := nls.New(env, nls.Config{AccessKeyID: cred(l, "VOICE_ALIYUN_ACCESS_KEY_ID"),
			AccessKeySecret: cred(l, "VOICE_ALIYUN_ACCESS_KEY_SECRET"), AppKey: cred(l, "VOICE_ALIYUN_APPKEY")})
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, s.Close)
		return nil, nil
	}},
	// The cloud contact centre: calls reported after they ended (tcccsim.go).
	{"tccc", func(ctx context.Context, env *sim.Env, cfg *Config, l config.Lookup) (sim.Channel, error) {
		return nil, mountTCCC(ctx, env, cfg, l)
	}},
	// The sentiment vendors: Tencent Cloud NLP and Aliyun NLP, both simulated.
	{"tencentnlp", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := tencentnlp.New(env, tencentnlp.Config{SecretID: cred(l, "SENTIMENT_TENCENT_SECRET_ID"), SecretKey: cred(l, "SENTIMENT_TENCENT_SECRET_KEY")})
		return nil, err
	}},
	{"alinlp", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := alinlp.New(env, alinlp.Config{AccessKeyID: cred(l, "SENTIMENT_ALIYUN_ACCESS_KEY_ID"), AccessKeySecret: cred(l, "SENTIMENT_ALIYUN_ACCESS_KEY_SECRET")})
		return nil, err
	}},
	{"alipay", func(ctx context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		return nil, mountAlipay(ctx, env, l)
	}},
	{"wechatpay", func(ctx context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		return nil, mountWechatPay(ctx, env, l)
	}},
	{"zendesk", func(_ context.Context, env *sim.Env, _ *Config, l config.Lookup) (sim.Channel, error) {
		_, err := zendesk.New(env, zendesk.Config{Email: cred(l, "ZENDESK_EMAIL"), APIToken: cred(l, "ZENDESK_API_TOKEN"), WebhookSecret: cred(l, "ZENDESK_WEBHOOK_SECRET")})
		return nil, err
	}},
}

// The simulated Alipay and WeChat Pay each verify the connector's signatures with the public key
// the merchant gave them and sign with their own key (providerKeys); their simulated customer
// pays each link SANDBOX_PAY_AFTER (default 3s; "off": never) after it was created. They stop
// (pending payments and notifies) when ctx ends.
func payAfter(l config.Lookup) (time.Duration, error) {
	switch v := get(l, "SANDBOX_PAY_AFTER", ""); v {
	case "":
		return 3 * time.Second, nil
	case "off":
		return -1, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("SANDBOX_PAY_AFTER=%q: want a duration or off", v)
		}
		return d, nil
	}
}

func providerKey(l config.Lookup, k string) string { return get(l, k, providerKeys[k]) }

func mountAlipay(ctx context.Context, env *sim.Env, l config.Lookup) error {
	after, err := payAfter(l)
	if err != nil {
		return err
	}
	s, err := alipaysim.New(env, alipaysim.Config{AppID: cred(l, "ALIPAY_APP_ID"), AppPublicKey: providerKey(l, "SANDBOX_ALIPAY_APP_PUBLIC_KEY"),
		PrivateKey: providerKey(l, "SANDBOX_ALIPAY_PRIVATE_KEY"), PayAfter: after})
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, s.Close)
	return nil
}

func mountWechatPay(ctx context.Context, env *sim.Env, l config.Lookup) error {
	after, err := payAfter(l)
	if err != nil {
		return err
	}
	s, err := wxpaysim.New(env, wxpaysim.Config{MchID: cred(l, "WECHATPAY_MCH_ID"), MerchantPublicKey: providerKey(l, "SANDBOX_WECHATPAY_MCH_PUBLIC_KEY"),
		MerchantSerial: cred(l, "WECHATPAY_MCH_SERIAL"), PrivateKey: providerKey(l, "SANDBOX_WECHATPAY_PLATFORM_PRIVATE_KEY"),
		Serial: cred(l, "WECHATPAY_PLATFORM_SERIAL"), APIv3Key: cred(l, "WECHATPAY_APIV3_KEY"), PayAfter: after})
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, s.Close)
	return nil
}

// mountSMS mounts an SMS simulator: its Config is read the way the sms connector reads its own
// (the vendor's credential variables, with the sandbox's as defaults, plus the simulator's
// SANDBOX_<VENDOR>_* knobs); it stops (pending and retried pushes) when ctx ends, and offers the
// customers' phones only when SMS_PROVIDER names it.
func mountSMS[C any, S interface {
	Close()
	Channel() sim.Channel
}](ctx context.Context, env *sim.Env, l config.Lookup, vendor string, newSim func(*sim.Env, C) (S, error), provider func(C) string) (sim.Channel, error) {
	var cfg C
	if err := config.Load(&cfg, credLookup(l)); err != nil {
		return nil, fmt.Errorf("%s simulator: %w", vendor, err)
	}
	s, err := newSim(env, cfg)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, s.Close)
	if provider(cfg) != vendor {
		return nil, nil
	}
	return s.Channel(), nil
}

func mountVendors(ctx context.Context, env *sim.Env, cfg *Config, lookup config.Lookup) ([]sim.Channel, error) {
	var chans []sim.Channel
	for _, v := range vendors {
		ch, err := v.mount(ctx, env, cfg, lookup)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			chans = append(chans, ch)
		}
	}
	return chans, nil
}

func vendorNames() []string {
	out := make([]string, len(vendors))
	for i, v := range vendors {
		out[i] = v.name
	}
	return out
}
