package sms

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	tcwire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

// The connector's own request builders reproduce the official vectors (vectors.md 4.2, 5.3 b).

func TestAliyunRequestVector(t *testing.T) {
	t.Parallel()
	q := map[string][]string{"ImageId": {"win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}, "RegionId": {"cn-shanghai"}}
	req, err := signedRequest(context.Background(), "https://ecs.cn-shanghai.aliyuncs.com", "RunInstances", "2014-05-26", q,
		"YourAccessKeyId", "YourAccessKeySecret", time.Date(2023, 10, 26, 10, 22, 32, 0, time.UTC), "3156853299f313e23d1673dc12e1703d")
	if err != nil {
		t.Fatal(err)
	}
	want := "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization\n got %s\nwant %s", got, want)
	}
	if req.Method != "POST" || req.URL.Path != "/" || req.Body != nil && req.ContentLength != 0 {
		t.Fatalf("request %s %s with a body", req.Method, req.URL)
	}
}

func TestTencentRequestVector(t *testing.T) {
	t.Parallel()
	p := &tencent{cfg: TencentConfig{SecretID: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", SecretKey: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
		SdkAppID: "1400006666", TemplateID: "1234", Region: "ap-guangzhou"}, base: "https://sms.tencentcloudapi.com",
		now: func() time.Time { return time.Unix(1551113065, 0) }}
	body, err := p.body("+8618511122266", "12345", "腾讯云", "test")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"PhoneNumberSet":["+8618511122266"],"SmsSdkAppId":"1400006666","TemplateId":"1234","SignName":"腾讯云","TemplateParamSet":["12345"],"SessionContext":"test"}`; string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}
	req, err := p.request(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tcwire.ParseAuthorization(req.Header.Get("Authorization"))
	if err != nil || a.Signature != "201d9ed67605eebf542a25126916521bc0509dfa77bd2367f7f43af8e2398dca" ||
		strings.Join(a.SignedHeaders, ";") != "content-type;host;x-tc-action" {
		t.Fatalf("authorization %+v %v", a, err)
	}
	for h, v := range map[string]string{"Content-Type": tcwire.ContentType, "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11",
		"X-TC-Region": "ap-guangzhou", "X-TC-Timestamp": "1551113065"} {
		if req.Header.Get(h) != v {
			t.Errorf("%s = %q, want %q", h, req.Header.Get(h), v)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, region, want string }{
		{"+8613800138000", "CN", "+8613800138000"},
		{"13800138000", "CN", "+8613800138000"},
		{"138 0013 8000", "CN", "+8613800138000"},
		{"138-0013-8000", "CN", "+8613800138000"},
		{"013800138000", "CN", "+8613800138000"},
		{"8613800138000", "CN", "+8613800138000"},
		{"008613800138000", "CN", "+8613800138000"},
		{"+852 9123 4567", "CN", "+85291234567"},
		{"91234567", "HK", "+85291234567"},
		{"(202) 555-0123", "US", "+12025550123"},
		{"07911 123456", "GB", "+447911123456"},
		{"12800138000", "CN", ""},
		{"1380013800", "CN", ""},
		{"+861012345678", "CN", ""}, // a Beijing landline: no SMS
		{"+0123456789", "CN", ""},
		{"+12345", "CN", ""},
		{"abc", "CN", ""},
		{"", "CN", ""},
		{"13800138000", "FR", ""},
	} {
		got, err := normalizePhone(tc.in, tc.region)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("normalizePhone(%q, %s) = %q, %v; want %q", tc.in, tc.region, got, err, tc.want)
		}
		if err != nil && (!errors.Is(err, errPhone) || tc.in != "" && strings.Contains(err.Error(), tc.in)) {
			t.Errorf("error %q must wrap errPhone and not echo the number", err)
		}
	}
	for in, want := range map[string]string{"13800138000": "+8613800138000", "85291234567": "+85291234567", "+12025550123": "+12025550123"} {
		if got, err := fromAliyun(in); got != want || err != nil {
			t.Errorf("fromAliyun(%q) = %q, %v", in, got, err)
		}
	}
	if aliyunNumber("+8613800138000") != "13800138000" || aliyunNumber("+85291234567") != "85291234567" {
		t.Error("aliyunNumber")
	}
}

func loadConfig(vars map[string]string) (*Config, error) {
	var cfg Config
	err := config.Load(&cfg, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	return &cfg, err
}

func TestConfig(t *testing.T) {
	t.Parallel()
	aliyunVars := map[string]string{"SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "LTAIx", "SMS_ALIYUN_ACCESS_KEY_SECRET": "s",
		"SMS_ALIYUN_SIGN_NAME": "omnibus", "SMS_ALIYUN_TEMPLATE_CODE": "SMS_154950909", "SMS_WEBHOOK_TOKEN": "0123456789abcdef"}
	cfg, err := loadConfig(aliyunVars)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIBase != "https://dysmsapi.aliyuncs.com" || cfg.Aliyun.TemplateParam != "content" || len(cfg.backoff) != 5 || cfg.backoff[0] != 5*time.Second {
		t.Fatalf("defaults %+v", cfg)
	}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "<unset>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	names := map[string]bool{}
	for _, f := range config.Describe(&Config{}) {
		names[f.Env] = true
	}
	for _, n := range []string{"SMS_PROVIDER", "SMS_API_BASE", "SMS_WEBHOOK_TOKEN", "SMS_ALIYUN_ACCESS_KEY_ID", "SMS_ALIYUN_TEMPLATE_PARAM", "SMS_TENCENT_SDK_APP_ID", "SMS_TENCENT_REGION"} {
		if !names[n] {
			t.Errorf("config.Describe lacks %s", n)
		}
	}
	if errs := config.Unknown(&Config{}, []string{"SMS_ALIYUN_TEMPLATE_COD=x"}, "SMS_"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "did you mean SMS_ALIYUN_TEMPLATE_CODE?") {
		t.Errorf("unknown variable: %v", errs)
	}
	tencentVars := map[string]string{"SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "AKIDx", "SMS_TENCENT_SECRET_KEY": "k",
		"SMS_TENCENT_SDK_APP_ID": "1400006666", "SMS_TENCENT_SIGN_NAME": "腾讯云", "SMS_TENCENT_TEMPLATE_ID": "1234", "SMS_WEBHOOK_ALLOW_IPS": "10.0.0.0/8,127.0.0.1"}
	if cfg, err := loadConfig(tencentVars); err != nil || cfg.APIBase != "https://sms.tencentcloudapi.com" || cfg.Tencent.Region != "ap-guangzhou" {
		t.Fatalf("tencent config %+v %v", cfg, err)
	}
	both := map[string]string{}
	for k, v := range tencentVars {
		both[k] = v
	}
	for k, v := range aliyunVars {
		both[k] = v
	}
	// Both providers configured: both are variants, SMS_PROVIDER's first, each with its own base.
	if cfg, err := loadConfig(with(with(both, "SMS_API_BASE", "http://sandbox/sandbox/aliyun"), "SMS_TENCENT_API_BASE", "http://sandbox/sandbox/tencent/")); err != nil ||
		strings.Join(cfg.Variants(), ",") != "aliyun,tencent" || cfg.Aliyun.APIBase != "http://sandbox/sandbox/aliyun" || cfg.Tencent.APIBase != "http://sandbox/sandbox/tencent" {
		t.Fatalf("both providers: %+v %v", cfg, err)
	}
	if cfg, err := loadConfig(aliyunVars); err != nil || strings.Join(cfg.Variants(), ",") != "aliyun" {
		t.Fatalf("one provider: variants %v, %v", cfg.Variants(), err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no provider", with(aliyunVars, "SMS_PROVIDER", "<unset>"), "SMS_PROVIDER is required"},
		{"typo", with(aliyunVars, "SMS_PROVIDER", "alyun"), "did you mean aliyun?"},
		{"typo tencent", with(aliyunVars, "SMS_PROVIDER", "tencnet"), "did you mean tencent?"},
		{"no secret", with(aliyunVars, "SMS_ALIYUN_ACCESS_KEY_SECRET", "<unset>"), "SMS_ALIYUN_ACCESS_KEY_SECRET is required"},
		{"bad template", with(aliyunVars, "SMS_ALIYUN_TEMPLATE_CODE", "154950909"), "SMS_ALIYUN_TEMPLATE_CODE"},
		{"bad param name", with(aliyunVars, "SMS_ALIYUN_TEMPLATE_PARAM", "${content}"), "SMS_ALIYUN_TEMPLATE_PARAM"},
		{"no protection", with(aliyunVars, "SMS_WEBHOOK_TOKEN", "<unset>"), "set SMS_WEBHOOK_TOKEN or SMS_WEBHOOK_ALLOW_IPS"},
		{"short token", with(aliyunVars, "SMS_WEBHOOK_TOKEN", "short"), "at least 16"},
		{"bad base", with(aliyunVars, "SMS_API_BASE", "dysmsapi.aliyuncs.com"), "SMS_API_BASE"},
		{"bad region", with(aliyunVars, "SMS_DEFAULT_REGION", "cn"), "SMS_DEFAULT_REGION"},
		{"bad backoff", with(aliyunVars, "SMS_SEND_BACKOFF", "5s,soon"), "SMS_SEND_BACKOFF"},
		{"bad app id", with(tencentVars, "SMS_TENCENT_SDK_APP_ID", "app"), "SMS_TENCENT_SDK_APP_ID"},
		{"bad tencent region", with(tencentVars, "SMS_TENCENT_REGION", "ap-guangzhuo"), "did you mean ap-guangzhou?"},
		{"bad allow-list", with(tencentVars, "SMS_WEBHOOK_ALLOW_IPS", "10.0.0.0/33"), "SMS_WEBHOOK_ALLOW_IPS"},
		{"tencent needs its own keys", with(aliyunVars, "SMS_PROVIDER", "tencent"), "SMS_TENCENT_SECRET_ID is required"},
		{"canary of an unknown variant", with(both, "SMS_CANARY", "tencnet:10%"), `SMS_CANARY: canary: invalid plan: "tencnet:10%": "tencnet" is not a variant (aliyun, tencent) (did you mean tencent?)`},
		{"canary of the baseline", with(both, "SMS_CANARY", "aliyun:10%"), "already the baseline"},
		{"canary share", with(both, "SMS_CANARY", "tencent:10"), ""},
		{"canary without the candidate's keys", with(aliyunVars, "SMS_CANARY", "tencent:10%"), "SMS_TENCENT_SECRET_ID is required to send through tencent"},
		{"half a second provider", with(aliyunVars, "SMS_TENCENT_SECRET_ID", "AKIDx"), "SMS_TENCENT_SECRET_KEY is required to send through tencent"},
		{"bad candidate base", with(with(both, "SMS_CANARY", "tencent:10%"), "SMS_TENCENT_API_BASE", "sms.tencentcloudapi.com"), "SMS_TENCENT_API_BASE"},
	} {
		if tc.want == "" {
			if _, err := loadConfig(tc.vars); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		_, err := loadConfig(tc.vars)
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]verdict{
		"isv.BUSINESS_LIMIT_CONTROL": transient, "isv.DAY_LIMIT_CONTROL": transient, "isp.SYSTEM_ERROR": transient,
		"Throttling.User": transient, "InvalidTimeStamp.Expired": transient, "SignatureNonceUsed": transient, "isv.SOMETHING_NEW": transient,
		"isv.MOBILE_NUMBER_ILLEGAL": rejected, "isv.SMS_TEMPLATE_ILLEGAL": rejected, "isv.SMS_SIGNATURE_ILLEGAL": rejected,
		"SignatureDoesNotMatch": misconfigured, "InvalidAccessKeyId.NotFound": misconfigured, "Forbidden.RAM": misconfigured,
	} {
		if got := aliyunVerdict(code); got != want {
			t.Errorf("aliyun %s: %s, want %s", code, got, want)
		}
	}
	for code, want := range map[string]verdict{
		"LimitExceeded.PhoneNumberDailyLimit": transient, "RequestLimitExceeded": transient, "InternalError.Timeout": transient,
		"AuthFailure.SignatureExpire": transient, "FailedOperation.InsufficientBalanceInSmsPackage": transient,
		"InvalidParameterValue.IncorrectPhoneNumber": rejected, "FailedOperation.TemplateIncorrectOrUnapproved": rejected,
		"FailedOperation.PhoneNumberInBlacklist": rejected, "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": rejected,
		"AuthFailure.SignatureFailure": misconfigured, "AuthFailure.SecretIdNotFound": misconfigured, "InvalidParameterValue.SdkAppIdNotExist": misconfigured,
	} {
		if got := tencentVerdict(code); got != want {
			t.Errorf("tencent %s: %s, want %s", code, got, want)
		}
	}
}

// ---- fuzzing the push decoders ----

func fuzzConn() *conn {
	rt := &connector.Runtime{Spec: Spec, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return &conn{rt: rt, cfg: &Config{DefaultRegion: "CN"}, now: time.Now}
}

// checkDecoded is the decoders' invariant: an error wraps webhook.ErrMalformed (400), and what
// decodes is declared, schema-valid, partitioned and free of repeated ids.
func checkDecoded(t *testing.T, outs []bus.Outgoing, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, webhook.ErrMalformed) {
			t.Fatalf("error %v does not wrap webhook.ErrMalformed", err)
		}
		return
	}
	ids := map[string]bool{}
	for _, o := range outs {
		e := o.Event
		if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
			t.Fatalf("event %s not schema-valid: %v\n%s", e.ID(), err, e.Data())
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("event %s: %v", e.ID(), err)
		}
		if ids[e.ID()] {
			t.Fatalf("repeated id %s in one batch", e.ID())
		}
		ids[e.ID()] = true
		if event.PartitionKey(e) == "" || strings.ContainsAny(e.ID(), "\r\n") {
			t.Fatalf("event %s: partition key %q", e.ID(), event.PartitionKey(e))
		}
		if (o.Subject == SubjectIn) != (e.Type() == TypeReceived) || (o.Subject == SubjectStatus) != (e.Type() == TypeStatus) {
			t.Fatalf("%s on %s", e.Type(), o.Subject)
		}
	}
}

func FuzzDecodeAliyunUp(f *testing.F) {
	f.Add([]byte(`[{"phone_number":"13800138000","send_time":"2017-09-01 00:00:00","content":"内容","sign_name":"签名","dest_code":"1234","sequence_id":1234567890}]`))
	f.Add([]byte(`[{"phone_number":"85291234567","send_time":"2026-11-27 08:00:00","content":"","sign_name":"","dest_code":"","sequence_id":1},{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"a","sequence_id":1}]`))
	f.Add([]byte(`[{"phone_number":"1381111****","send_time":"2017-09-01 00:00:00","content":"内容","sequence_id":"7"}]`))
	c := fuzzConn()
	f.Fuzz(func(t *testing.T, body []byte) {
		outs, err := c.decodeAliyunUp(context.Background(), body)
		checkDecoded(t, outs, err)
	})
}

func FuzzDecodeAliyunReport(f *testing.F) {
	f.Add([]byte(`[{"phone_number":"13800138000","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"900619746936498^0","out_id":"0196f3a0-7b1c-7d2e-8f00-000000000001"}]`))
	f.Add([]byte(`[{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00","success":false,"err_code":"","err_msg":"","sms_size":"1","biz_id":"1","out_id":""}]`))
	c := fuzzConn()
	f.Fuzz(func(t *testing.T, body []byte) {
		outs, err := c.decodeAliyunReport(context.Background(), body)
		checkDecoded(t, outs, err)
	})
}

func FuzzDecodeTencentReply(f *testing.F) {
	f.Add([]byte(`{"extend":"","mobile":"13800138000","nationcode":"86","sign":"短信签名","text":"用户回复的内容","time":1457336869}`))
	f.Add([]byte(`{"extend":"01","mobile":"91234567","nationcode":"852","sign":"","text":"","time":1}`))
	c := fuzzConn()
	f.Fuzz(func(t *testing.T, body []byte) {
		outs, err := c.decodeTencentReply(context.Background(), body)
		checkDecoded(t, outs, err)
	})
}

func FuzzDecodeTencentStatus(f *testing.F) {
	f.Add([]byte(`[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"2645:1045710669157053657849499619"}]`))
	f.Add([]byte(`[{"user_receive_time":"","nationcode":"1","mobile":"2025550123","report_status":"FAIL","errmsg":"","description":"","sid":"x"},{"nationcode":"86","mobile":"13800138000","report_status":"FAIL","sid":"x"}]`))
	c := fuzzConn()
	f.Fuzz(func(t *testing.T, body []byte) {
		outs, err := c.decodeTencentStatus(context.Background(), body)
		checkDecoded(t, outs, err)
	})
}

// ---- a redelivered command is not sent twice ----

type countingProvider struct{ calls int }

func (p *countingProvider) send(context.Context, string, string, string, string) (string, error) {
	p.calls++
	return "biz-1", nil
}

func TestRedeliveredCommandSentOnce(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	st, err := openState(ctx, b.Client, b.Client.JetStream(), time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProvider{}
	noRollout, err := canary.Start(ctx, canary.Options{Target: Channel, Service: Channel, Baseline: ProviderAliyun, Variants: providers,
		Publish: func(context.Context, ...bus.Outgoing) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(noRollout.Close)
	c := &conn{rt: &connector.Runtime{Spec: Spec, Log: slog.New(slog.DiscardHandler)}, st: st, provs: map[string]provider{ProviderAliyun: p},
		canary: noRollout, now: time.Now,
		cfg: &Config{Provider: ProviderAliyun, DefaultRegion: "CN", MaxTextRunes: 500, Timeout: time.Second}}
	cmd := &sendCommand{Message: []byte(`{"type":"text","text":"hi"}`)}
	cmd.To.Kind, cmd.To.Value = "phone", "13800138000"
	for range 2 {
		out, err := c.attempt(ctx, "cmd-1", cmd)
		if err != nil || out.status != "sent" || out.vendorID != "biz-1" || out.to != "+8613800138000" {
			t.Fatalf("attempt = %+v, %v", out, err)
		}
	}
	if p.calls != 1 {
		t.Fatalf("vendor called %d times for one command", p.calls)
	}
	// The receipt side finds the command by the vendor id.
	mine := &pending{provider: ProviderAliyun, vendorID: "biz-1", at: time.Now()}
	old := &pending{provider: ProviderTencent, vendorID: "biz-1", at: time.Now().Add(-time.Hour)} // does not wait for the state
	echoed := &pending{provider: ProviderAliyun, vendorID: "biz-2", fallback: "cmd-2", at: time.Now()}
	unknown := &pending{provider: ProviderAliyun, vendorID: "biz-3", at: time.Now().Add(-time.Hour)}
	upl := &pending{}
	got := c.sendsOf(c.newBatch(ctx), []*pending{mine, old, echoed, unknown, upl})
	if got[mine] != "cmd-1" || got[old] != "tencent:biz-1" || got[echoed] != "cmd-2" || got[unknown] != "aliyun:biz-3" || got[upl] != "" {
		t.Fatalf("receipts map to %v", got)
	}
	// A fresh receipt the state does not know yet waits (within the budget) for the send.
	fresh := &pending{provider: ProviderAliyun, vendorID: "biz-4", at: time.Now()}
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = st.remember(ctx, sentRecord{MessageID: "cmd-4", Provider: ProviderAliyun, VendorID: "biz-4"})
	}()
	if got := c.sendsOf(c.newBatch(ctx), []*pending{fresh}); got[fresh] != "cmd-4" {
		t.Fatalf("a receipt overtaking its send maps to %q", got[fresh])
	}
}

// The send_sms routes' classes: the breaker counts outages only, the pipeline never retries a
// refusal, and throttling is a rate limit.
func TestSendClasses(t *testing.T) {
	t.Parallel()
	ali, ten := &aliyun{}, &tencent{}
	for name, tc := range map[string]struct {
		v      vendor
		status int
		code   string
		want   resilience.Class
	}{
		"aliyun ok":              {ali, 200, "OK", resilience.ClassSuccess},
		"aliyun no BizId":        {ali, 200, "NoBizId", resilience.ClassRetryable},
		"aliyun system error":    {ali, 200, "isp.SYSTEM_ERROR", resilience.ClassRetryable},
		"aliyun flow control":    {ali, 200, "isv.BUSINESS_LIMIT_CONTROL", resilience.ClassRateLimited},
		"aliyun throttling":      {ali, 400, "Throttling.User", resilience.ClassRateLimited},
		"aliyun bad number":      {ali, 200, "isv.MOBILE_NUMBER_ILLEGAL", resilience.ClassPermanent},
		"aliyun bad key":         {ali, 404, "InvalidAccessKeyId.NotFound", resilience.ClassPermanent},
		"aliyun wrong path":      {ali, 404, "HTTP404", resilience.ClassPermanent},
		"aliyun gateway":         {ali, 502, "HTTP502", resilience.ClassRetryable},
		"aliyun 429":             {ali, 429, "HTTP429", resilience.ClassRateLimited},
		"tencent ok":             {ten, 200, "Ok", resilience.ClassSuccess},
		"tencent internal error": {ten, 200, "InternalError.Timeout", resilience.ClassRetryable},
		"tencent limit":          {ten, 200, "LimitExceeded.PhoneNumberDailyLimit", resilience.ClassRateLimited},
		"tencent request limit":  {ten, 200, "RequestLimitExceeded", resilience.ClassRateLimited},
		"tencent bad signature":  {ten, 200, "AuthFailure.SignatureFailure", resilience.ClassPermanent},
		"tencent blacklisted":    {ten, 200, "FailedOperation.PhoneNumberInBlacklist", resilience.ClassPermanent},
		"tencent gateway":        {ten, 404, "HTTP404", resilience.ClassRetryable},
		"tencent no send status": {ten, 200, "NoSendStatus", resilience.ClassRetryable},
	} {
		if got := classOf(tc.v, tc.status, tc.code); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}
