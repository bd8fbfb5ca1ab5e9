package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
)

const aliyunHost = wire.Host

// aliyun sends through Dysmsapi SendSms the way the current official SDKs do (darabonba
// OpenAPI CallApi → DoRequest): POST /, the business parameters in the query, an empty body,
// signed with V3 (ACS3-HMAC-SHA256). The API base's path, if any, is a mount prefix (the
// sandbox's /sandbox/aliyun) and not part of the signed canonical URI, which is "/".
type aliyun struct {
	cfg  AliyunConfig
	base string
	now  func() time.Time
}

// signedRequest builds a V3-signed RPC call: POST base/?query, empty body.
func signedRequest(ctx context.Context, base, action, version string, query url.Values, key, secret string, at time.Time, nonce string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/?"+query.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(wire.HeaderAction, action)
	req.Header.Set(wire.HeaderVersion, version)
	req.Header.Set(wire.HeaderDate, wire.FormatTimestamp(at))
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "omnibus-sms")
	wire.SignV3(req, nil, key, secret, "/")
	return req, nil
}

func (p *aliyun) newSend(ctx context.Context, to, text, sign, ref string) (*http.Request, []byte, error) {
	param, err := json.Marshal(map[string]string{p.cfg.TemplateParam: text})
	if err != nil {
		return nil, nil, err
	}
	params := wire.SendSms{PhoneNumbers: aliyunNumber(to), SignName: sign, TemplateCode: p.cfg.TemplateCode, TemplateParam: string(param)}
	if len(ref) <= 64 {
		params.OutID = ref // echoed as out_id in the receipt
	}
	query := params.Query()
	req, err := signedRequest(ctx, p.base, wire.ActionSendSms, wire.Version, query, p.cfg.AccessKeyID, p.cfg.AccessKeySecret,
		p.now(), uuid.NewString())
	return req, []byte(query.Encode()), err
}

func (p *aliyun) readSend(status int, body []byte) (string, string, error) {
	var out struct {
		Code, Message, BizId, RequestId string
	}
	if jerr := json.Unmarshal(body, &out); jerr != nil || out.Code == "" {
		code := fmt.Sprintf("HTTP%d", status)
		return "", code, &vendorError{Provider: ProviderAliyun, Code: code, Message: snippet(body), Status: status, Verdict: p.verdict(status, code)}
	}
	if status == http.StatusOK && out.Code == wire.CodeOK {
		if out.BizId == "" {
			return "", "NoBizId", &vendorError{Provider: ProviderAliyun, Code: "NoBizId", Message: "no BizId in the answer", Status: status, Verdict: transient}
		}
		return out.BizId, out.Code, nil
	}
	return "", out.Code, &vendorError{Provider: ProviderAliyun, Code: out.Code, Message: out.Message, Status: status, Verdict: p.verdict(status, out.Code)}
}

// verdict: an answer that is not SendSms's JSON is the connector's fault on a 4xx other than
// 429 (a wrong API base or path), else transient; a code is classified by aliyunVerdict.
func (p *aliyun) verdict(status int, code string) verdict {
	if code == fmt.Sprintf("HTTP%d", status) {
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
			return misconfigured
		}
		return transient
	}
	return aliyunVerdict(code)
}

// throttled: the flow controls on the account, sign or number (isv.BUSINESS_LIMIT_CONTROL,
// isv.DAY_LIMIT_CONTROL) and the API's own Throttling.*.
func (p *aliyun) throttled(code string) bool {
	return code == "isv.BUSINESS_LIMIT_CONTROL" || code == "isv.DAY_LIMIT_CONTROL" || strings.HasPrefix(code, "Throttling")
}

// aliyunRejected are the codes that make a message unsendable.
var aliyunRejected = map[string]bool{
	"isv.MOBILE_NUMBER_ILLEGAL": true, "isv.MOBILE_COUNT_OVER_LIMIT": true, "isv.TEMPLATE_MISSING_PARAMETERS": true,
	"isv.SMS_TEMPLATE_ILLEGAL": true, "isv.SMS_SIGNATURE_ILLEGAL": true, "isv.SMS_SIGN_ILLEGAL": true, "isv.SIGN_NAME_ILLEGAL": true,
	"isv.INVALID_PARAMETERS": true, "isv.INVALID_JSON_PARAM": true, "isv.PARAM_LENGTH_LIMIT": true, "isv.PARAM_NOT_SUPPORT_URL": true,
	"isv.BLACK_KEY_CONTROL_LIMIT": true, "isv.SMS_CONTENT_ILLEGAL": true, "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": true,
	"isv.EXTEND_CODE_ERROR": true, "isv.TEMPLATE_PARAMS_ILLEGAL": true, "isv.SMS_TEST_NUMBER_LIMIT": true,
	"isv.SMS_TEST_SIGN_TEMPLATE_LIMIT": true, "isv.SMS_OVER_LIMIT": true, "isv.CUSTOMER_REFUSED": true,
}

// aliyunMisconfigured are the codes that say the connector's own credentials or settings are
// wrong (retrying cannot help, fixing the configuration and redriving can).
var aliyunMisconfigured = map[string]bool{
	"SignatureDoesNotMatch": true, "IncompleteSignature": true, "InvalidAction.NotFound": true, "InvalidVersion": true,
	"isp.RAM_PERMISSION_DENY": true, "isv.ACCOUNT_NOT_EXISTS": true, "isv.ACCOUNT_ABNORMAL": true, "isv.DENY_IP_RANGE": true,
	"MissingPhoneNumbers": true, "MissingSignName": true, "MissingTemplateCode": true, "InvalidTimeStamp.Format": true,
}

// aliyunVerdict classifies a SendSms code. Throttling (isv.BUSINESS_LIMIT_CONTROL,
// isv.DAY_LIMIT_CONTROL, Throttling.*), outages (isp.SYSTEM_ERROR, InternalError,
// ServiceUnavailable), an exhausted balance, clock skew (InvalidTimeStamp.Expired) and a nonce
// clash are transient, as is any code not listed.
func aliyunVerdict(code string) verdict {
	switch {
	case aliyunRejected[code]:
		return rejected
	case aliyunMisconfigured[code], strings.HasPrefix(code, "InvalidAccessKeyId"), strings.HasPrefix(code, "Forbidden"):
		return misconfigured
	}
	return transient
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	if s == "" {
		s = "(empty answer)"
	}
	return s
}

// newCheck is the start check: QuerySmsSign of SMS_ALIYUN_SIGN_NAME, signed as SendSms is. It
// proves the AccessKey, the API base and that the signature exists and is approved.
func (p *aliyun) newCheck(ctx context.Context) (*http.Request, []byte, error) {
	query := url.Values{"SignName": {p.cfg.SignName}}
	req, err := signedRequest(ctx, p.base, wire.ActionQuerySmsSign, wire.Version, query, p.cfg.AccessKeyID, p.cfg.AccessKeySecret,
		p.now(), uuid.NewString())
	return req, []byte(query.Encode()), err
}

// readCheck reads QuerySmsSign's answer (see checker): a refused AccessKey, a signature the
// account does not have, under review or rejected, or an API base that is not Dysmsapi's stop
// the start naming the variable. A RAM user that may send but not call QuerySmsSign
// (isp.RAM_PERMISSION_DENY, Forbidden.*) has proven its AccessKey: only a warning, as for
// throttling and outages.
func (p *aliyun) readCheck(status int, body []byte) (string, error) {
	var out wire.QuerySmsSignResponse
	if jerr := json.Unmarshal(body, &out); jerr != nil || out.Code == "" {
		code := fmt.Sprintf("HTTP%d", status)
		if p.verdict(status, code) == misconfigured {
			return code, connector.Misconfigured("SMS_API_BASE or SMS_ALIYUN_API_BASE (%s) answered %d without Dysmsapi's JSON: %s; want https://%s",
				p.base, status, snippet(body), aliyunHost)
		}
		return code, &vendorError{Provider: ProviderAliyun, Code: code, Message: snippet(body), Status: status, Verdict: transient}
	}
	sign := p.cfg.SignName
	switch {
	case status == http.StatusOK && out.Code == wire.CodeOK && out.SignStatus == wire.SignApproved:
		return out.Code, nil
	case status == http.StatusOK && out.Code == wire.CodeOK && out.SignStatus == wire.SignPending:
		return codeChecked, connector.Misconfigured("SMS_ALIYUN_SIGN_NAME=%s is still under review (审核中, QuerySmsSign SignStatus 0): sends with it are refused until Aliyun approves it", sign)
	case status == http.StatusOK && out.Code == wire.CodeOK:
		return codeChecked, connector.Misconfigured("SMS_ALIYUN_SIGN_NAME=%s was not approved (审核失败, QuerySmsSign SignStatus %d): %s; name an approved signature",
			sign, out.SignStatus, out.Reason)
	case out.Code == "isv.SMS_SIGNATURE_ILLEGAL" || out.Code == "isv.SMS_SIGN_ILLEGAL" || out.Code == "isv.SIGN_NAME_ILLEGAL":
		return out.Code, connector.Misconfigured("SMS_ALIYUN_SIGN_NAME=%s: the account has no such signature (%s: %s)", sign, out.Code, out.Message)
	case out.Code == "InvalidAccessKeyId.NotFound" || out.Code == "InvalidAccessKeyId.Inactive" || out.Code == "isv.ACCOUNT_NOT_EXISTS":
		return out.Code, connector.Misconfigured("SMS_ALIYUN_ACCESS_KEY_ID=%s refused by Aliyun (%s: %s)", p.cfg.AccessKeyID, out.Code, out.Message)
	case out.Code == "SignatureDoesNotMatch" || out.Code == "IncompleteSignature":
		return out.Code, connector.Misconfigured("SMS_ALIYUN_ACCESS_KEY_SECRET does not match SMS_ALIYUN_ACCESS_KEY_ID=%s (%s)", p.cfg.AccessKeyID, out.Code)
	case out.Code == "isp.RAM_PERMISSION_DENY" || strings.HasPrefix(out.Code, "Forbidden"):
		return out.Code, &vendorError{Provider: ProviderAliyun, Code: out.Code, Message: out.Message + " (the RAM user may not call QuerySmsSign; grant dysms:QuerySmsSign to have SMS_ALIYUN_SIGN_NAME checked at start)",
			Status: status, Verdict: transient}
	}
	v := p.verdict(status, out.Code)
	if v != transient {
		return out.Code, connector.Misconfigured("aliyun refused the configuration (SMS_ALIYUN_*): %s: %s", out.Code, out.Message)
	}
	return out.Code, &vendorError{Provider: ProviderAliyun, Code: out.Code, Message: out.Message, Status: status, Verdict: v}
}
