// Package aliyun simulates Aliyun SMS (Dysmsapi 2017-05-25) for the sandbox.
//
// Vendor side: SendSms at /sandbox/aliyun/ (the RPC endpoint https://dysmsapi.aliyuncs.com/,
// mounted under the sandbox prefix). The current official SDKs (darabonba OpenAPI client,
// CallApi → DoRequest) sign with V3, ACS3-HMAC-SHA256: POST /, the business parameters in the
// query, an empty body, x-acs-* headers and an Authorization header. That is what the sms
// connector sends, and the simulator verifies it exactly as Aliyun does. The older RPC V1
// signature (HMAC-SHA1 over the percent-encoded query, GET or POST) is accepted too, as Aliyun
// still does. The canonical URI is the path below the mount point ("/"), as on the real host.
//
// Checks and their Aliyun errors (HTTP status, Code): a bad signature → 400
// SignatureDoesNotMatch (the message carries the server's string to sign, as Aliyun's does),
// an unknown AccessKeyId → 404 InvalidAccessKeyId.NotFound, a Timestamp / x-acs-date outside
// 15 minutes → 400 InvalidTimeStamp.Expired, a reused SignatureNonce → 400
// SignatureNonceUsed, missing signature parts → 400 IncompleteSignature. Business errors are
// HTTP 200 with a Code (isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL,
// isv.SMS_TEMPLATE_ILLEGAL, isv.INVALID_JSON_PARAM, isv.TEMPLATE_MISSING_PARAMETERS, ...).
// Success is {"Code":"OK","Message":"OK","BizId":..,"RequestId":..}. Every accepted number is
// recorded with Env.Record("aliyun", "SendSms", number, ...); rejected calls are recorded with
// their error. Injected faults (sim.Fault.Code) are rendered in the same shapes:
// isv.* / isp.* codes as HTTP 200 business errors (isv.BUSINESS_LIMIT_CONTROL is Aliyun's
// throttling), gateway codes as 4xx/5xx error bodies, "" as 500 InternalError.
//
// QuerySmsSign (the same endpoint, Action QuerySmsSign, SignName in the query, signed alike)
// answers a signature's review state: SignStatus 1 (approved) for SignNames (any name when
// SignNames is empty), 0 (under review) for PendingSignNames, else the business error
// isv.SMS_SIGNATURE_ILLEGAL; a pending signature is refused by SendSms as an unknown one. Faults
// on "aliyun SendSms" apply to the whole endpoint, QuerySmsSign included; its calls are recorded
// with op QuerySmsSign.
//
// Customer side: SmsReport delivery receipts for accepted numbers are pushed after ReportDelay
// to the connector as Aliyun's HTTP batch push does (a JSON array, several receipts per push,
// re-pushed after 1, 5 and 10 minutes on a non-2xx answer; with Repeat > 0 some receipts are
// pushed twice), and the sim.Channel pushes customer uplinks (SmsUp) from the customer's phone
// in Aliyun's number format (mainland numbers without +86).
package aliyun

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name: routes under /sandbox/aliyun, fault keys "aliyun <op>".
const Vendor = "aliyun"

// OpSendSms is the fault key and record op of SendSms ("aliyun SendSms"); OpQuerySmsSign the
// record op of QuerySmsSign.
const (
	OpSendSms      = "SendSms"
	OpQuerySmsSign = "QuerySmsSign"
)

// Config configures the simulator. The env-tagged fields are read by Mount.
type Config struct {
	AccessKeyID     string        `env:"SMS_ALIYUN_ACCESS_KEY_ID" default:"LTAI5tSandboxAliyunSms01" desc:"the AccessKeyId the Aliyun simulator issued: the sms connector's own variable"`
	AccessKeySecret string        `env:"SMS_ALIYUN_ACCESS_KEY_SECRET" default:"sandbox-aliyun-access-key-secret" desc:"its AccessKeySecret (the connector's variable)"`
	SignNames       []string      `env:"SANDBOX_ALIYUN_SIGN_NAMES" desc:"approved SMS signatures, comma-separated; empty accepts any"`
	PendingSigns    []string      `env:"SANDBOX_ALIYUN_PENDING_SIGN_NAMES" desc:"SMS signatures still under review (QuerySmsSign SignStatus 0), comma-separated; SendSms refuses them"`
	Templates       []string      `env:"SANDBOX_ALIYUN_TEMPLATES" desc:"approved templates as CODE:param|param, comma-separated (e.g. SMS_000001:content); empty accepts any code with string parameters"`
	Token           string        `env:"SMS_WEBHOOK_TOKEN" desc:"the sms connector's webhook token (its own variable), added as ?token= to the default push URLs"`
	UpURL           string        `env:"SANDBOX_ALIYUN_UP_URL" desc:"where SmsUp uplinks are pushed; default <SANDBOX_HOOK_BASE>/sms/aliyun/up"`
	ReportURL       string        `env:"SANDBOX_ALIYUN_REPORT_URL" desc:"where SmsReport receipts are pushed; default <SANDBOX_HOOK_BASE>/sms/aliyun/report"`
	ReportDelay     time.Duration `env:"SANDBOX_ALIYUN_REPORT_DELAY" default:"1s" desc:"delay between an accepted send and its receipt push (receipts due together go in one batch); 0 is 1s"`
	Repeat          float64       `env:"SANDBOX_ALIYUN_REPEAT" default:"0" desc:"share (0..1) of receipts pushed a second time, as Aliyun may"`
	Undeliverable   []string      `env:"SANDBOX_ALIYUN_UNDELIVERABLE" desc:"numbers (Aliyun format) whose receipts report failure"`
	UpSignName      string        `env:"SANDBOX_ALIYUN_UP_SIGN_NAME" default:"omnibus" desc:"sign_name of simulated uplinks"`
	DestCode        string        `env:"SANDBOX_ALIYUN_DEST_CODE" desc:"dest_code (uplink extension) of simulated uplinks"`
	Provider        string        `env:"SMS_PROVIDER" default:"aliyun" desc:"the sms connector's provider (its own variable): the sandbox offers the customers' phones through this simulator only when it is aliyun"`

	// Retry is the re-push schedule after a failed push; default 1m, 5m, 10m (Aliyun's three
	// re-pushes). Set it short in tests.
	Retry []time.Duration
	// Window bounds Timestamp / x-acs-date skew and how long nonces are remembered; default 15m.
	Window time.Duration
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
	// Client makes the pushes; default Env.Client.
	Client *http.Client
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return errors.New("the simulator needs an AccessKey (SMS_ALIYUN_ACCESS_KEY_ID and SMS_ALIYUN_ACCESS_KEY_SECRET)")
	}
	if c.Repeat < 0 || c.Repeat > 1 {
		return errors.New("SANDBOX_ALIYUN_REPEAT must be within 0..1")
	}
	if c.ReportDelay < 0 {
		return errors.New("SANDBOX_ALIYUN_REPORT_DELAY must not be negative")
	}
	_, err := parseTemplates(c.Templates)
	return err
}

func parseTemplates(list []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range list {
		code, params, _ := strings.Cut(t, ":")
		if code = strings.TrimSpace(code); code == "" {
			return nil, fmt.Errorf("SANDBOX_ALIYUN_TEMPLATES: %q: want CODE:param|param", t)
		}
		var names []string
		for _, p := range strings.Split(params, "|") {
			if p = strings.TrimSpace(p); p != "" {
				names = append(names, p)
			}
		}
		out[code] = names
	}
	return out, nil
}

// Sim is a running Aliyun SMS simulator.
type Sim struct {
	env       *sim.Env
	cfg       Config
	log       *slog.Logger
	templates map[string][]string
	reports   *sim.Pusher[wire.SmsReport]
	g         *sim.Group
	seq       atomic.Int64

	nonces *sim.Nonces
}

// New mounts the simulator on env. Close stops its pushes.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Window == 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.ReportDelay == 0 {
		cfg.ReportDelay = time.Second
	}
	if cfg.Retry == nil {
		cfg.Retry = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = env.Client
	}
	if cfg.UpURL == "" {
		cfg.UpURL = env.HookWithToken("/sms/aliyun/up", cfg.Token)
	}
	if cfg.ReportURL == "" {
		cfg.ReportURL = env.HookWithToken("/sms/aliyun/report", cfg.Token)
	}
	templates, _ := parseTemplates(cfg.Templates)
	log := env.VendorLog(Vendor)
	s := &Sim{env: env, cfg: cfg, log: log, templates: templates, g: sim.NewGroup(), nonces: sim.NewNonces(cfg.Window)}
	s.seq.Store(cfg.Now().Unix() * 1000)
	// Aliyun's HTTP batch push: receipts collected for ReportDelay, up to 100 a push, re-pushed
	// after each wait of Retry, then dropped (as Aliyun gives up).
	s.reports = sim.NewPusher[wire.SmsReport](s.g, sim.PushOptions{Name: "SmsReport", URL: cfg.ReportURL, Client: cfg.Client,
		Delay: cfg.ReportDelay, Retry: cfg.Retry, Max: 100, Log: log})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpSendSms, Pattern: "/{$}", Handler: s.serve, Fail: s.fail})
	return s, nil
}

// Close stops pending and retried pushes.
func (s *Sim) Close() { s.g.Close() }

// ---- SendSms ----

// Aliyun's messages for the codes the simulator answers with.
var messages = GatewayMessages.With(sim.Messages{
	"isv.BUSINESS_LIMIT_CONTROL":      "触发分钟级流控Permits:1",
	"isv.DAY_LIMIT_CONTROL":           "触发日发送限额",
	"isv.MOBILE_NUMBER_ILLEGAL":       "非法手机号",
	"isv.MOBILE_COUNT_OVER_LIMIT":     "手机号码数量超过限制",
	"isv.SMS_SIGNATURE_ILLEGAL":       "该账号下找不到对应签名",
	"isv.SMS_TEMPLATE_ILLEGAL":        "该账号下找不到对应模板",
	"isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
	"isv.INVALID_JSON_PARAM":          "JSON参数不合法，只接受字符串值",
	"isv.AMOUNT_NOT_ENOUGH":           "账户余额不足",
	"isv.OUT_OF_SERVICE":              "业务停机",
	"isp.SYSTEM_ERROR":                "系统出现错误，请重新调用",
	"MissingPhoneNumbers":             "PhoneNumbers is mandatory for this action.",
	"MissingSignName":                 "SignName is mandatory for this action.",
	"MissingTemplateCode":             "TemplateCode is mandatory for this action.",
})

// GatewayMessages are the OpenAPI gateway's error codes and messages (signature, timestamp,
// nonce, action, version, throttling, server errors), shared by every Aliyun product the
// sandbox simulates.
var GatewayMessages = sim.Messages{
	"InternalError":               "The request processing has failed due to some unknown error, exception or failure.",
	"ServiceUnavailable":          "The request has failed due to a temporary failure of the server.",
	"Throttling.User":             "Request was denied due to user flow control.",
	"Throttling.Api":              "Request was denied due to api flow control.",
	"SignatureDoesNotMatch":       "Specified signature does not match our calculation.",
	"InvalidAccessKeyId.NotFound": "Specified access key is not found.",
	"InvalidTimeStamp.Expired":    "Specified time stamp or date value is expired.",
	"InvalidTimeStamp.Format":     "Specified time stamp or date value is not well formatted.",
	"SignatureNonceUsed":          "Specified signature nonce was used already.",
	"IncompleteSignature":         "The request signature does not conform to Aliyun standards.",
	"InvalidAction.NotFound":      "Specified api is not found, please check your url and method.",
	"InvalidVersion":              "Specified parameter Version is not valid.",
}

// gatewayStatus is the HTTP status of the OpenAPI gateway's errors.
var gatewayStatus = map[string]int{
	"InternalError": 500, "ServiceUnavailable": 503, "InvalidAccessKeyId.NotFound": 404, "InvalidAction.NotFound": 404,
}

// apiError is an error answered in Aliyun's shape.
type apiError = sim.APIError

var errCode = messages.Err

// business reports whether code is a business (isv./isp.) code, answered with HTTP 200.
func business(code string) bool {
	return strings.HasPrefix(code, "isv.") || strings.HasPrefix(code, "isp.")
}

func requestID() string { return strings.ToUpper(uuid.NewString()) }

// write answers v as JSON, or XML when the V1 request asked Format=XML.
func write(w http.ResponseWriter, status int, xmlFormat bool, v any) {
	if xmlFormat {
		w.Header().Set("Content-Type", "text/xml;charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, xml.Header)
		_ = xml.NewEncoder(w).Encode(v)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Sim) writeErr(w http.ResponseWriter, xmlFormat bool, e *apiError) {
	id := requestID()
	if business(e.Code) {
		write(w, http.StatusOK, xmlFormat, wire.SendSmsResponse{Code: e.Code, Message: e.Message, RequestID: id})
		return
	}
	status := gatewayStatus[e.Code]
	if status == 0 {
		status = http.StatusBadRequest
	}
	write(w, status, xmlFormat, wire.ErrorResponse{RequestID: id, HostID: wire.Host, Code: e.Code, Message: e.Message,
		Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.Code) + "&product=Dysmsapi&requestId=" + id})
}

// request is a parsed SendSms call.
type request struct {
	params  url.Values // business (and, for V1, common) parameters
	xml     bool
	version string // the signature scheme
	keyID   string
	action  string
}

func (s *Sim) secret(id string) (string, bool) {
	return s.cfg.AccessKeySecret, id == s.cfg.AccessKeyID
}

// parse reads the request's parameters (query, plus a form body) and verifies its signature,
// timestamp and nonce.
func (s *Sim) parse(r *http.Request) (*request, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, errCode("InvalidParameter", "body: "+err.Error())
	}
	params := r.URL.Query()
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errCode("InvalidParameter", "form body: "+err.Error())
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	req := &request{params: params}
	var stamp, nonce, action, version string
	if strings.HasPrefix(r.Header.Get("Authorization"), wire.AlgorithmV3+" ") {
		req.version = wire.AlgorithmV3
		uri := wire.CanonicalURI(strings.TrimPrefix(r.URL.Path, sim.Prefix+Vendor))
		v, err := wire.VerifyV3(r, body, uri, s.secret)
		if e := AuthError(v.StringToSign, err); e != nil {
			return req, e
		}
		req.keyID = v.AccessKeyID
		stamp, nonce = r.Header.Get(wire.HeaderDate), r.Header.Get(wire.HeaderNonce)
		action, version = r.Header.Get(wire.HeaderAction), r.Header.Get(wire.HeaderVersion)
	} else {
		req.version = "1.0"
		req.xml = strings.EqualFold(params.Get("Format"), "XML")
		v, err := wire.VerifyV1(r.Method, params, s.secret)
		if e := AuthError(v.StringToSign, err); e != nil {
			return req, e
		}
		req.keyID = v.AccessKeyID
		stamp, nonce = params.Get("Timestamp"), params.Get("SignatureNonce")
		action, version = params.Get("Action"), params.Get("Version")
	}
	at, err := wire.ParseTimestamp(stamp)
	if err != nil {
		return req, errCode("InvalidTimeStamp.Format")
	}
	now := s.cfg.Now()
	if d := now.Sub(at); d > s.cfg.Window || d < -s.cfg.Window {
		return req, errCode("InvalidTimeStamp.Expired")
	}
	if nonce == "" {
		return req, errCode("IncompleteSignature", "SignatureNonce is mandatory.")
	}
	if !s.nonces.Use(nonce, now) {
		return req, errCode("SignatureNonceUsed")
	}
	if action != wire.ActionSendSms && action != wire.ActionQuerySmsSign {
		return req, errCode("InvalidAction.NotFound")
	}
	req.action = action
	if version != wire.Version {
		return req, errCode("InvalidVersion")
	}
	return req, nil
}

// AuthError is the gateway's answer to a failed signature check (VerifyV1 or VerifyV3): nil for
// none, InvalidAccessKeyId.NotFound, SignatureDoesNotMatch (with the server's string to sign, as
// Aliyun's message has it) or IncompleteSignature.
func AuthError(stringToSign string, err error) *sim.APIError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wire.ErrUnknownAccessKey):
		return GatewayMessages.Err("InvalidAccessKeyId.NotFound")
	case errors.Is(err, wire.ErrSignature):
		return GatewayMessages.Err("SignatureDoesNotMatch", "server string to sign is:"+stringToSign)
	default:
		return GatewayMessages.Err("IncompleteSignature", err.Error())
	}
}

// SendRecord is the Data of a SendSms record: what the connector sent, as Aliyun parsed it.
type SendRecord struct {
	PhoneNumber     string            `json:"PhoneNumber"`
	SignName        string            `json:"SignName"`
	TemplateCode    string            `json:"TemplateCode"`
	TemplateParam   map[string]string `json:"TemplateParam,omitempty"`
	OutID           string            `json:"OutId,omitempty"`
	SmsUpExtendCode string            `json:"SmsUpExtendCode,omitempty"`
	BizID           string            `json:"BizId,omitempty"`
	AccessKeyID     string            `json:"AccessKeyId,omitempty"`
	// SignatureMethod is the verified scheme: ACS3-HMAC-SHA256 (V3) or HMAC-SHA1 (V1).
	SignatureMethod string `json:"SignatureMethod,omitempty"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	req, e := s.parse(r)
	xmlFormat := req != nil && req.xml
	if e != nil {
		s.env.Record(Vendor, OpSendSms, paramsOf(req).Get("PhoneNumbers"), map[string]string{"Code": e.Code}, e)
		s.writeErr(w, xmlFormat, e)
		return
	}
	if req.action == wire.ActionQuerySmsSign {
		s.querySign(w, req, xmlFormat)
		return
	}
	p := wire.ParseSendSms(req.params)
	numbers, params, e := s.check(p)
	if e != nil {
		s.env.Record(Vendor, OpSendSms, p.PhoneNumbers, p, e)
		s.writeErr(w, xmlFormat, e)
		return
	}
	method := "HMAC-SHA1"
	if req.version == wire.AlgorithmV3 {
		method = wire.AlgorithmV3
	}
	bizID := fmt.Sprintf("%d^0", 1_000_000_000_000_000+rand.Int64N(9_000_000_000_000_000))
	now := s.cfg.Now()
	size := smsSize(p.SignName, params)
	for _, n := range numbers {
		s.env.Record(Vendor, OpSendSms, n, SendRecord{PhoneNumber: n, SignName: p.SignName, TemplateCode: p.TemplateCode,
			TemplateParam: params, OutID: p.OutID, SmsUpExtendCode: p.SmsUpExtendCode, BizID: bizID, AccessKeyID: req.keyID,
			SignatureMethod: method}, nil)
		s.receipt(wire.SmsReport{PhoneNumber: n, SendTime: wire.FormatTime(now), SmsSize: size, BizID: bizID, OutID: p.OutID})
	}
	write(w, http.StatusOK, xmlFormat, wire.SendSmsResponse{Code: wire.CodeOK, Message: "OK", BizID: bizID, RequestID: requestID()})
}

// querySign answers QuerySmsSign (see the package doc).
func (s *Sim) querySign(w http.ResponseWriter, req *request, xmlFormat bool) {
	name := req.params.Get("SignName")
	var e *apiError
	status := wire.SignApproved
	switch {
	case name == "":
		e = errCode("MissingSignName")
	case slices.Contains(s.cfg.PendingSigns, name):
		status = wire.SignPending
	case len(s.cfg.SignNames) > 0 && !slices.Contains(s.cfg.SignNames, name):
		e = errCode("isv.SMS_SIGNATURE_ILLEGAL")
	}
	if e != nil {
		s.env.Record(Vendor, OpQuerySmsSign, "", map[string]string{"SignName": name, "Code": e.Code}, e)
		s.writeErr(w, xmlFormat, e)
		return
	}
	s.env.Record(Vendor, OpQuerySmsSign, "", map[string]any{"SignName": name, "SignStatus": status}, nil)
	write(w, http.StatusOK, xmlFormat, wire.QuerySmsSignResponse{RequestID: requestID(), Code: wire.CodeOK, Message: "OK", SignName: name,
		SignStatus: status, CreateDate: wire.FormatTime(s.cfg.Now().Add(-30 * 24 * time.Hour))})
}

func paramsOf(r *request) url.Values {
	if r == nil {
		return url.Values{}
	}
	return r.params
}

// check validates SendSms's business parameters as Aliyun does and returns the numbers (Aliyun
// format) and the template parameters.
func (s *Sim) check(p wire.SendSms) ([]string, map[string]string, *apiError) {
	switch {
	case p.PhoneNumbers == "":
		return nil, nil, errCode("MissingPhoneNumbers")
	case p.SignName == "":
		return nil, nil, errCode("MissingSignName")
	case p.TemplateCode == "":
		return nil, nil, errCode("MissingTemplateCode")
	}
	raw := strings.Split(p.PhoneNumbers, ",")
	if len(raw) > 1000 {
		return nil, nil, errCode("isv.MOBILE_COUNT_OVER_LIMIT")
	}
	numbers := make([]string, 0, len(raw))
	for _, n := range raw {
		v, ok := VendorNumber(n)
		if !ok {
			return nil, nil, errCode("isv.MOBILE_NUMBER_ILLEGAL")
		}
		numbers = append(numbers, v)
	}
	if (len(s.cfg.SignNames) > 0 && !slices.Contains(s.cfg.SignNames, p.SignName)) || slices.Contains(s.cfg.PendingSigns, p.SignName) {
		return nil, nil, errCode("isv.SMS_SIGNATURE_ILLEGAL")
	}
	want, known := s.templates[p.TemplateCode]
	if len(s.templates) > 0 && !known {
		return nil, nil, errCode("isv.SMS_TEMPLATE_ILLEGAL")
	}
	params := map[string]string{}
	if p.TemplateParam != "" {
		if err := json.Unmarshal([]byte(p.TemplateParam), &params); err != nil {
			return nil, nil, errCode("isv.INVALID_JSON_PARAM")
		}
	}
	for _, name := range want {
		if params[name] == "" {
			return nil, nil, errCode("isv.TEMPLATE_MISSING_PARAMETERS", name)
		}
	}
	return numbers, params, nil
}

// VendorNumber reads a PhoneNumbers entry as Aliyun does: a mainland mobile with or without
// +86 / 0086 / 86 becomes its 11 digits; anything else must be an international number written
// as country code + number (digits only, e.g. 85291234567; + or 00 before it is tolerated). A
// bare 11-digit number starting with 1 is a mainland number, so a US/Canada number is only
// recognised with an explicit +1 or 001. ok is false for anything else.
func VendorNumber(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"+86", "0086", "86"} {
		if rest, ok := strings.CutPrefix(s, p); ok && mainland(rest) {
			return rest, true
		}
	}
	if mainland(s) {
		return s, true
	}
	intl := false
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		s, intl = rest, true
	} else if rest, ok := strings.CutPrefix(s, "00"); ok {
		s, intl = rest, true
	}
	if len(s) < 8 || len(s) > 15 || s[0] == '0' || !sim.AllDigits(s) || strings.HasPrefix(s, "86") {
		return "", false
	}
	// A bare number starting with 1 is read as a mainland number (and this one is not valid);
	// NANP numbers need the explicit +1 / 001 and ten national digits.
	if s[0] == '1' && (!intl || len(s) != 11) {
		return "", false
	}
	return s, true
}

func mainland(s string) bool { return len(s) == 11 && s[0] == '1' && s[1] >= '3' && sim.AllDigits(s) }

// smsSize is the number of billed SMS, as Aliyun's SmsSize writes it.
func smsSize(sign string, params map[string]string) string {
	return strconv.Itoa(sim.SMSParts(sign, slices.Collect(maps.Values(params))))
}

// receipt schedules the delivery receipt of one accepted number.
func (s *Sim) receipt(rep wire.SmsReport) {
	if code, ok := s.undeliverable(rep.PhoneNumber); ok {
		rep.Success, rep.ErrCode, rep.ErrMsg = false, code, "用户接收失败"
	} else {
		rep.Success, rep.ErrCode, rep.ErrMsg = true, "DELIVERED", "用户接收成功"
	}
	rep.ReportTime = wire.FormatTime(s.cfg.Now().Add(s.cfg.ReportDelay))
	s.reports.AddRepeated(rep, s.cfg.Repeat)
}

func (s *Sim) undeliverable(n string) (string, bool) {
	if slices.Contains(s.cfg.Undeliverable, n) {
		return "MK:0001", true
	}
	return "", false
}

// fail answers an injected fault in Aliyun's shape and records it.
func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	if code == "" {
		code = "InternalError"
	}
	to := r.URL.Query().Get("PhoneNumbers")
	e := errCode(code)
	s.env.Record(Vendor, OpSendSms, to, map[string]string{"Code": code, "injected": "true"}, e)
	s.writeErr(w, strings.EqualFold(r.URL.Query().Get("Format"), "XML"), e)
}

// ---- customers ----

// Channel returns the customers' side: Write pushes an SmsUp uplink.
func (s *Sim) Channel() sim.Channel { return sim.NewChannel("sms", s.writeUp) }

// writeUp pushes one uplink from c.Phone (Aliyun's format: mainland numbers without +86) as a
// one-item SmsUp batch and returns the connector's answer.
func (s *Sim) writeUp(ctx context.Context, c sim.Customer, text string) error {
	if s.cfg.UpURL == "" {
		return errors.New("aliyun simulator: no SmsUp URL (set SANDBOX_HOOK_BASE or SANDBOX_ALIYUN_UP_URL)")
	}
	num, ok := VendorNumber(c.Phone)
	if !ok {
		return fmt.Errorf("aliyun simulator: customer %d has no number Aliyun can carry", c.ID)
	}
	up := wire.SmsUp{PhoneNumber: num, SendTime: wire.FormatTime(s.cfg.Now()), Content: text, SignName: s.cfg.UpSignName,
		DestCode: s.cfg.DestCode, SequenceID: json.Number(fmt.Sprint(s.seq.Add(1)))}
	body, err := json.Marshal([]wire.SmsUp{up})
	if err != nil {
		return err
	}
	return sim.PostJSON(ctx, s.cfg.Client, s.cfg.UpURL, body)
}
