package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

const tencentHost = wire.Host

// tencentSigned are the headers the connector signs, as the current official demos do.
var tencentSigned = []string{"content-type", "host", "x-tc-action"}

// tencent sends through SendSms (sms 2021-01-11), POST / with a JSON body signed with
// TC3-HMAC-SHA256 over content-type, host and x-tc-action. The API base's path, if any, is a
// mount prefix (the sandbox's /sandbox/tencent); the canonical URI is always "/".
type tencent struct {
	cfg  TencentConfig
	base string
	now  func() time.Time
}

func (p *tencent) request(ctx context.Context, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(wire.HeaderAction, wire.ActionSendSms)
	req.Header.Set(wire.HeaderVersion, wire.Version)
	req.Header.Set(wire.HeaderRegion, p.cfg.Region)
	wire.Signer{SecretID: p.cfg.SecretID, SecretKey: p.cfg.SecretKey, Service: wire.Service, SignedHeaders: tencentSigned}.
		Sign(req, body, p.now().Unix())
	return req, nil
}

// body is SendSms's JSON body for one number and the agent's text as the template's parameter.
func (p *tencent) body(to, text, sign, ref string) ([]byte, error) {
	in := wire.SendSmsRequest{PhoneNumberSet: []string{to}, SmsSdkAppID: p.cfg.SdkAppID, TemplateID: p.cfg.TemplateID,
		SignName: sign, TemplateParamSet: []string{text}}
	if len(ref) < 512 {
		in.SessionContext = ref // echoed in the answer
	}
	return json.Marshal(in)
}

func (p *tencent) newSend(ctx context.Context, to, text, sign, ref string) (*http.Request, []byte, error) {
	body, err := p.body(to, text, sign, ref)
	if err != nil {
		return nil, nil, err
	}
	req, err := p.request(ctx, body)
	return req, body, err
}

func (p *tencent) readSend(status int, answer []byte) (string, string, error) {
	var out wire.SendSmsResponse
	if jerr := json.Unmarshal(answer, &out); jerr != nil || status != http.StatusOK {
		code := fmt.Sprintf("HTTP%d", status)
		return "", code, &vendorError{Provider: ProviderTencent, Code: code, Message: snippet(answer), Status: status, Verdict: transient}
	}
	r := out.Response
	if r.Error != nil {
		return "", r.Error.Code, &vendorError{Provider: ProviderTencent, Code: r.Error.Code, Message: r.Error.Message, Status: status, Verdict: tencentVerdict(r.Error.Code)}
	}
	for _, st := range r.SendStatusSet {
		if st.Code == wire.CodeOk && st.SerialNo != "" {
			return st.SerialNo, st.Code, nil
		}
		if st.Code != wire.CodeOk {
			return "", st.Code, &vendorError{Provider: ProviderTencent, Code: st.Code, Message: st.Message, Status: status, Verdict: tencentVerdict(st.Code)}
		}
	}
	return "", "NoSendStatus", &vendorError{Provider: ProviderTencent, Code: "NoSendStatus", Message: "no SendStatus with a SerialNo in the answer", Status: status, Verdict: transient}
}

// verdict: every answer that is not SendSms's JSON is transient (a gateway failing); a code is
// classified by tencentVerdict.
func (p *tencent) verdict(status int, code string) verdict {
	if code == fmt.Sprintf("HTTP%d", status) {
		return transient
	}
	return tencentVerdict(code)
}

// throttled: the frequency limits on the account and number (LimitExceeded.*) and the API's
// RequestLimitExceeded.
func (p *tencent) throttled(code string) bool {
	return strings.HasPrefix(code, "LimitExceeded.") || strings.HasPrefix(code, "RequestLimitExceeded")
}

// tencentVerdict classifies an API-level or per-number code. Throttling (RequestLimitExceeded,
// LimitExceeded.*), outages (InternalError*, ResourceUnavailable*), an exhausted package and
// clock skew (AuthFailure.SignatureExpire) are transient, as is any code not listed; the
// connector's own credentials and settings are misconfigured; everything about this message
// (number, template, sign, content) is rejected.
func tencentVerdict(code string) verdict {
	switch {
	case code == "AuthFailure.SignatureExpire", strings.HasPrefix(code, "LimitExceeded."), strings.HasPrefix(code, "RequestLimitExceeded"),
		strings.HasPrefix(code, "InternalError"), strings.HasPrefix(code, "ResourceUnavailable"),
		code == "FailedOperation.InsufficientBalanceInSmsPackage":
		return transient
	case strings.HasPrefix(code, "AuthFailure."), strings.HasPrefix(code, "UnauthorizedOperation."),
		code == "InvalidAction", code == "NoSuchVersion", code == "UnsupportedRegion", code == "MissingParameter",
		code == "UnknownParameter", code == "InvalidParameter", code == "InvalidParameterValue.SdkAppIdNotExist":
		return misconfigured
	case strings.HasPrefix(code, "InvalidParameterValue."), strings.HasPrefix(code, "UnsupportedOperation."),
		code == "FailedOperation.SignatureIncorrectOrUnapproved", code == "FailedOperation.TemplateIncorrectOrUnapproved",
		code == "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", code == "FailedOperation.ContainSensitiveWord",
		code == "FailedOperation.PhoneNumberInBlacklist", code == "FailedOperation.PhoneNumberOnBlacklist",
		code == "FailedOperation.PhoneNumberParseFail", code == "FailedOperation.JsonParseFail":
		return rejected
	}
	return transient
}

// newCheck is the start check: SmsPackagesStatistics of SMS_TENCENT_SDK_APP_ID, signed as
// SendSms is. It proves the key pair, the region and the application; the signature
// (SMS_TENCENT_SIGN_NAME) is not checked: DescribeSmsSignList looks signatures up by id, and the
// connector is configured with the name.
func (p *tencent) newCheck(ctx context.Context) (*http.Request, []byte, error) {
	now := p.now().In(wire.Beijing)
	body, err := json.Marshal(wire.PackagesStatisticsRequest{SmsSdkAppID: p.cfg.SdkAppID, Limit: 1, Offset: 0,
		BeginTime: now.AddDate(0, 0, -1).Format("2006010215"), EndTime: now.Format("2006010215")})
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set(wire.HeaderAction, wire.ActionSmsPackagesStatistics)
	req.Header.Set(wire.HeaderVersion, wire.Version)
	req.Header.Set(wire.HeaderRegion, p.cfg.Region)
	wire.Signer{SecretID: p.cfg.SecretID, SecretKey: p.cfg.SecretKey, Service: wire.Service, SignedHeaders: tencentSigned}.
		Sign(req, body, p.now().Unix())
	return req, body, nil
}

// readCheck reads SmsPackagesStatistics's answer (see checker): AuthFailure.SecretIdNotFound
// names SMS_TENCENT_SECRET_ID, AuthFailure.SignatureFailure SMS_TENCENT_SECRET_KEY,
// UnsupportedRegion SMS_TENCENT_REGION, InvalidParameterValue.SdkAppIdNotExist
// SMS_TENCENT_SDK_APP_ID; throttling, outages and clock skew only warn.
func (p *tencent) readCheck(status int, answer []byte) (string, error) {
	var out wire.PackagesStatisticsResponse
	if jerr := json.Unmarshal(answer, &out); jerr != nil || status != http.StatusOK {
		code := fmt.Sprintf("HTTP%d", status)
		return code, &vendorError{Provider: ProviderTencent, Code: code, Message: snippet(answer), Status: status, Verdict: transient}
	}
	e := out.Response.Error
	if e == nil {
		return "Ok", nil
	}
	switch {
	case e.Code == "AuthFailure.SecretIdNotFound":
		return e.Code, connector.Misconfigured("SMS_TENCENT_SECRET_ID=%s refused by Tencent Cloud (%s: %s)", p.cfg.SecretID, e.Code, e.Message)
	case e.Code == "AuthFailure.SignatureFailure" || e.Code == "AuthFailure.InvalidAuthorization":
		return e.Code, connector.Misconfigured("SMS_TENCENT_SECRET_KEY does not match SMS_TENCENT_SECRET_ID=%s (%s)", p.cfg.SecretID, e.Code)
	case e.Code == "UnsupportedRegion":
		return e.Code, connector.Misconfigured("SMS_TENCENT_REGION=%s: %s", p.cfg.Region, e.Message)
	case e.Code == "InvalidParameterValue.SdkAppIdNotExist":
		return e.Code, connector.Misconfigured("SMS_TENCENT_SDK_APP_ID=%s: the account has no such SMS application (%s)", p.cfg.SdkAppID, e.Code)
	case tencentVerdict(e.Code) == misconfigured:
		return e.Code, connector.Misconfigured("Tencent Cloud refused the configuration (SMS_TENCENT_*): %s: %s", e.Code, e.Message)
	}
	return e.Code, &vendorError{Provider: ProviderTencent, Code: e.Code, Message: e.Message, Status: status, Verdict: transient}
}
