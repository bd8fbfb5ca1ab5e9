// Package tencent simulates Tencent Cloud SMS (API 3.0, sms 2021-01-11) for the sandbox.
//
// Vendor side: SendSms at POST /sandbox/tencent/ (the endpoint https://sms.tencentcloudapi.com/
// mounted under the sandbox prefix), dispatched by X-TC-Action (SmsPackagesStatistics too: one
// package for a known SmsSdkAppId, InvalidParameterValue.SdkAppIdNotExist else, recorded with op
// SmsPackagesStatistics), with the TC3-HMAC-SHA256
// signature verified exactly as the API gateway does (pkg/wire/tencent.Verify: content-type and
// host signed, the credential's date the UTC date of X-TC-Timestamp, five minutes of skew).
// Every error is HTTP 200 with {"Response":{"Error":{"Code","Message"},"RequestId"}}:
// AuthFailure.SignatureFailure, AuthFailure.SignatureExpire, AuthFailure.SecretIdNotFound,
// AuthFailure.InvalidAuthorization, InvalidAction, NoSuchVersion, UnsupportedRegion,
// InvalidParameterValue.SdkAppIdNotExist, FailedOperation.SignatureIncorrectOrUnapproved,
// FailedOperation.TemplateIncorrectOrUnapproved,
// FailedOperation.TemplateParamSetNotMatchApprovedTemplate. A request that passes gets one
// SendStatus per number, Code "Ok" (or InvalidParameterValue.IncorrectPhoneNumber for a number
// that is not E.164), and each accepted number is recorded with
// Env.Record("tencent", "SendSms", "+86...", ...). Injected faults render per-number codes
// (LimitExceeded.PhoneNumberDailyLimit and the other LimitExceeded.PhoneNumber*,
// FailedOperation.PhoneNumberInBlacklist, InvalidParameterValue.IncorrectPhoneNumber) in
// SendStatusSet, every other code (RequestLimitExceeded, InternalError, ...) as the API error,
// and "" as InternalError.
//
// Customer side: delivery status callbacks for accepted numbers are POSTed after ReportDelay as
// a JSON array (several receipts per callback), and the sim.Channel posts reply callbacks
// {"extend","mobile","nationcode","sign","text","time"} from the customer's phone, split into
// nationcode and national number as Tencent does. Neither callback is signed. Tencent documents
// no re-push of failed callbacks; Retry (default none) adds one for experiments.
package tencent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name: routes under /sandbox/tencent, fault keys "tencent <op>".
const Vendor = "tencent"

// OpSendSms is the fault key and record op of SendSms ("tencent SendSms").
const OpSendSms = "SendSms"

// OpPackages is the record op of SmsPackagesStatistics (its faults are SendSms's: one endpoint).
const OpPackages = "SmsPackagesStatistics"

// Config configures the simulator. The env-tagged fields are read by Mount.
type Config struct {
	SecretID      string        `env:"SMS_TENCENT_SECRET_ID" default:"AKIDsandboxTencentSms0000000000000000" desc:"the SecretId the Tencent simulator issued: the sms connector's own variable"`
	SecretKey     string        `env:"SMS_TENCENT_SECRET_KEY" default:"sandbox-tencent-secret-key" desc:"its SecretKey (the connector's variable)"`
	SdkAppIDs     []string      `env:"SMS_TENCENT_SDK_APP_ID" default:"1400000000" desc:"the SmsSdkAppId(s) that exist (the connector's variable; comma-separated for several)"`
	SignNames     []string      `env:"SANDBOX_TENCENT_SIGN_NAMES" desc:"approved signatures, comma-separated; empty accepts any"`
	Templates     []string      `env:"SANDBOX_TENCENT_TEMPLATES" desc:"approved templates as ID:parameter-count, comma-separated (e.g. 1234:1); empty accepts any"`
	Token         string        `env:"SMS_WEBHOOK_TOKEN" desc:"the sms connector's webhook token (its own variable), added as ?token= to the default callback URLs"`
	ReplyURL      string        `env:"SANDBOX_TENCENT_REPLY_URL" desc:"where reply callbacks go; default <SANDBOX_HOOK_BASE>/sms/tencent/reply"`
	StatusURL     string        `env:"SANDBOX_TENCENT_STATUS_URL" desc:"where status callbacks go; default <SANDBOX_HOOK_BASE>/sms/tencent/status"`
	ReportDelay   time.Duration `env:"SANDBOX_TENCENT_REPORT_DELAY" default:"1s" desc:"delay between an accepted send and its status callback (receipts due together go in one callback); 0 is 1s"`
	Repeat        float64       `env:"SANDBOX_TENCENT_REPEAT" default:"0" desc:"share (0..1) of receipts sent a second time"`
	Undeliverable []string      `env:"SANDBOX_TENCENT_UNDELIVERABLE" desc:"E.164 numbers whose receipts report FAIL"`
	ReplySign     string        `env:"SANDBOX_TENCENT_REPLY_SIGN" default:"omnibus" desc:"sign of simulated replies"`
	Extend        string        `env:"SANDBOX_TENCENT_EXTEND" desc:"extend code of simulated replies"`
	Provider      string        `env:"SMS_PROVIDER" default:"aliyun" desc:"the sms connector's provider (its own variable): the sandbox offers the customers' phones through this simulator only when it is tencent"`

	// Retry is the re-push schedule of failed status callbacks; default none.
	Retry []time.Duration
	// Window bounds X-TC-Timestamp skew; default 5m.
	Window time.Duration
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
	// Client makes the callbacks; default Env.Client.
	Client *http.Client
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.SecretID == "" || c.SecretKey == "" {
		return errors.New("the simulator needs a key pair (SMS_TENCENT_SECRET_ID and SMS_TENCENT_SECRET_KEY)")
	}
	if len(c.SdkAppIDs) == 0 {
		return errors.New("the simulator needs an SmsSdkAppId (SMS_TENCENT_SDK_APP_ID)")
	}
	if c.Repeat < 0 || c.Repeat > 1 {
		return errors.New("SANDBOX_TENCENT_REPEAT must be within 0..1")
	}
	if c.ReportDelay < 0 {
		return errors.New("SANDBOX_TENCENT_REPORT_DELAY must not be negative")
	}
	_, err := parseTemplates(c.Templates)
	return err
}

func parseTemplates(list []string) (map[string]int, error) {
	out := map[string]int{}
	for _, t := range list {
		id, count, ok := strings.Cut(t, ":")
		n, err := strconv.Atoi(strings.TrimSpace(count))
		if id = strings.TrimSpace(id); !ok || id == "" || err != nil || n < 0 {
			return nil, fmt.Errorf("SANDBOX_TENCENT_TEMPLATES: %q: want ID:parameter-count", t)
		}
		out[id] = n
	}
	return out, nil
}

// Sim is a running Tencent SMS simulator.
type Sim struct {
	env       *sim.Env
	cfg       Config
	log       *slog.Logger
	templates map[string]int
	status    *sim.Pusher[wire.StatusReport]
	g         *sim.Group
}

// New mounts the simulator on env. Close stops its callbacks.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.ReportDelay == 0 {
		cfg.ReportDelay = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = env.Client
	}
	if cfg.ReplyURL == "" {
		cfg.ReplyURL = env.HookWithToken("/sms/tencent/reply", cfg.Token)
	}
	if cfg.StatusURL == "" {
		cfg.StatusURL = env.HookWithToken("/sms/tencent/status", cfg.Token)
	}
	templates, _ := parseTemplates(cfg.Templates)
	log := env.VendorLog(Vendor)
	s := &Sim{env: env, cfg: cfg, log: log, templates: templates, g: sim.NewGroup()}
	s.status = sim.NewPusher[wire.StatusReport](s.g, sim.PushOptions{Name: "status callback", URL: cfg.StatusURL, Client: cfg.Client,
		Delay: cfg.ReportDelay, Retry: cfg.Retry, Max: 100, Log: log})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpSendSms, Pattern: "POST /{$}", Handler: s.serve, Fail: s.fail})
	return s, nil
}

// Close stops pending callbacks.
func (s *Sim) Close() { s.g.Close() }

// ---- SendSms ----

// GatewayMessages are API 3.0's common error codes and messages (signature, action, version,
// region, parameters, throttling), shared by every Tencent Cloud product the sandbox simulates.
var GatewayMessages = sim.Messages{
	"AuthFailure.SignatureFailure":     "The provided credentials could not be validated. Please check your signature is correct.",
	"AuthFailure.SignatureExpire":      "Signature expired. Timestamp and server time cannot differ by more than 5 minutes.",
	"AuthFailure.SecretIdNotFound":     "The SecretId is not found, please ensure that your SecretId is correct.",
	"AuthFailure.InvalidAuthorization": "The Authorization in the request header is invalid.",
	"InvalidAction":                    "The requested action is not supported.",
	"NoSuchVersion":                    "The requested version does not exist or is not supported.",
	"UnsupportedRegion":                "The API does not support this region.",
	"InvalidParameter":                 "The parameter is invalid.",
	"MissingParameter":                 "A required parameter is missing.",
	"RequestLimitExceeded":             "Your current request times exceeds the frequency limit. Please reduce the frequency of calls.",
	"InternalError":                    "An internal error has occurred. Retry your request, but if the problem persists, contact us.",
}

// Tencent's messages for the codes the simulator answers with.
var messages = GatewayMessages.With(sim.Messages{
	"InvalidParameterValue.SdkAppIdNotExist":                   "The SdkAppId does not exist.",
	"InvalidParameterValue.IncorrectPhoneNumber":               "Incorrect mobile number format.",
	"FailedOperation.SignatureIncorrectOrUnapproved":           "The signature is not approved or its format is incorrect.",
	"FailedOperation.TemplateIncorrectOrUnapproved":            "The template is not approved or its content does not match.",
	"FailedOperation.TemplateParamSetNotMatchApprovedTemplate": "The number of parameters does not match the template.",
	"FailedOperation.PhoneNumberInBlacklist":                   "The mobile number is in the blocklist.",
	"LimitExceeded.PhoneNumberCountLimit":                      "The number of mobile numbers in one request exceeds 200.",
	"LimitExceeded.PhoneNumberDailyLimit":                      "The number of SMS messages sent to this mobile number today exceeds the upper limit.",
	"LimitExceeded.PhoneNumberThirtySecondLimit":               "The number of SMS messages sent to this mobile number in 30 seconds exceeds the upper limit.",
	"LimitExceeded.PhoneNumberOneHourLimit":                    "The number of SMS messages sent to this mobile number in one hour exceeds the upper limit.",
	"LimitExceeded.PhoneNumberSameContentDailyLimit":           "The number of SMS messages with the same content sent to this mobile number today exceeds the upper limit.",
})

// perNumber reports whether code is reported per number in SendStatusSet rather than as the
// API error.
func perNumber(code string) bool {
	switch code {
	case "InvalidParameterValue.IncorrectPhoneNumber", "FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberOnBlacklist":
		return true
	}
	return strings.HasPrefix(code, "LimitExceeded.PhoneNumber") && code != "LimitExceeded.PhoneNumberCountLimit"
}

type apiError = sim.APIError

var errCode = messages.Err

func writeJSON(w http.ResponseWriter, v any) {
	sim.WriteJSON(w, http.StatusOK, "application/json", v) // API 3.0 answers errors with 200 too
}

func writeErr(w http.ResponseWriter, e *apiError) {
	writeJSON(w, wire.SendSmsResponse{Response: wire.Result{Error: &wire.Error{Code: e.Code, Message: e.Message}, RequestID: uuid.NewString()}})
}

var regions = map[string]bool{"ap-guangzhou": true, "ap-beijing": true, "ap-nanjing": true, "ap-singapore": true}

func (s *Sim) secret(id string) (string, bool) { return s.cfg.SecretKey, id == s.cfg.SecretID }

// parse verifies the request and decodes its body.
func (s *Sim) parse(r *http.Request) (*wire.SendSmsRequest, string, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, "", errCode("InvalidParameter", "body: "+err.Error())
	}
	v, err := wire.Verify(r, body, wire.Service, s.secret, s.cfg.Now(), s.cfg.Window)
	switch {
	case errors.Is(err, wire.ErrSecretIDNotFound):
		return nil, "", errCode("AuthFailure.SecretIdNotFound")
	case errors.Is(err, wire.ErrExpired):
		return nil, "", errCode("AuthFailure.SignatureExpire")
	case errors.Is(err, wire.ErrSignature):
		return nil, v.SecretID, errCode("AuthFailure.SignatureFailure")
	case err != nil:
		return nil, "", errCode("AuthFailure.InvalidAuthorization", err.Error())
	}
	action := r.Header.Get(wire.HeaderAction)
	switch {
	case action != wire.ActionSendSms && action != wire.ActionSmsPackagesStatistics:
		return nil, v.SecretID, errCode("InvalidAction")
	case r.Header.Get(wire.HeaderVersion) != wire.Version:
		return nil, v.SecretID, errCode("NoSuchVersion")
	case !regions[r.Header.Get(wire.HeaderRegion)]:
		return nil, v.SecretID, errCode("UnsupportedRegion")
	}
	if action == wire.ActionSmsPackagesStatistics {
		return nil, v.SecretID, s.packages(body)
	}
	var req wire.SendSmsRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, v.SecretID, errCode("InvalidParameter", err.Error())
	}
	return &req, v.SecretID, nil
}

// errAnswered is parse's "answered already" (SmsPackagesStatistics): serve writes nothing more.
var errAnswered = &apiError{Code: "answered"}

// packages answers SmsPackagesStatistics: one package of the application, or
// InvalidParameterValue.SdkAppIdNotExist; recorded with op SmsPackagesStatistics.
func (s *Sim) packages(body []byte) *apiError {
	var req wire.PackagesStatisticsRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	switch err := dec.Decode(&req); {
	case err != nil:
		return errCode("InvalidParameter", err.Error())
	case req.SmsSdkAppID == "" || req.Limit == 0:
		return errCode("MissingParameter", "SmsSdkAppId, Limit")
	case req.Limit > 500:
		return errCode("InvalidParameterValue", "Limit")
	case !slices.Contains(s.cfg.SdkAppIDs, req.SmsSdkAppID):
		return errCode("InvalidParameterValue.SdkAppIdNotExist")
	}
	return errAnswered
}

// check validates the business parameters (API-level errors).
func (s *Sim) check(req *wire.SendSmsRequest) *apiError {
	switch {
	case len(req.PhoneNumberSet) == 0:
		return errCode("MissingParameter", "PhoneNumberSet")
	case len(req.PhoneNumberSet) > 200:
		return errCode("LimitExceeded.PhoneNumberCountLimit")
	case !slices.Contains(s.cfg.SdkAppIDs, req.SmsSdkAppID):
		return errCode("InvalidParameterValue.SdkAppIdNotExist")
	case req.TemplateID == "":
		return errCode("MissingParameter", "TemplateId")
	case len(s.cfg.SignNames) > 0 && !slices.Contains(s.cfg.SignNames, req.SignName):
		return errCode("FailedOperation.SignatureIncorrectOrUnapproved")
	}
	if n, known := s.templates[req.TemplateID]; len(s.templates) > 0 {
		if !known {
			return errCode("FailedOperation.TemplateIncorrectOrUnapproved")
		}
		if n != len(req.TemplateParamSet) {
			return errCode("FailedOperation.TemplateParamSetNotMatchApprovedTemplate")
		}
	}
	return nil
}

// SendRecord is the Data of a SendSms record: what the connector sent, as Tencent parsed it.
type SendRecord struct {
	PhoneNumber      string   `json:"PhoneNumber"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	SignName         string   `json:"SignName"`
	TemplateID       string   `json:"TemplateId"`
	TemplateParamSet []string `json:"TemplateParamSet,omitempty"`
	SessionContext   string   `json:"SessionContext,omitempty"`
	SerialNo         string   `json:"SerialNo,omitempty"`
	SecretID         string   `json:"SecretId,omitempty"`
	// SignatureMethod is the verified scheme, TC3-HMAC-SHA256.
	SignatureMethod string `json:"SignatureMethod,omitempty"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	req, id, e := s.parse(r)
	if r.Header.Get(wire.HeaderAction) == wire.ActionSmsPackagesStatistics { // parse answered it (errAnswered) or refused it
		s.answerPackages(w, id, e)
		return
	}
	if e == nil {
		e = s.check(req)
	}
	if e != nil {
		to := ""
		if req != nil {
			to = strings.Join(req.PhoneNumberSet, ",")
		}
		s.env.Record(Vendor, OpSendSms, to, map[string]string{"Code": e.Code, "SecretId": id}, e)
		writeErr(w, e)
		return
	}
	fee := sim.SMSParts(req.SignName, req.TemplateParamSet)
	now := s.cfg.Now()
	set := make([]wire.SendStatus, 0, len(req.PhoneNumberSet))
	for _, raw := range req.PhoneNumberSet {
		num, ok := E164(raw)
		if !ok {
			e := errCode("InvalidParameterValue.IncorrectPhoneNumber")
			set = append(set, wire.SendStatus{PhoneNumber: raw, SessionContext: req.SessionContext, Code: e.Code, Message: e.Message})
			s.env.Record(Vendor, OpSendSms, raw, map[string]string{"Code": e.Code}, e)
			continue
		}
		serial := fmt.Sprintf("%04d:%d%018d", 2000+rand.IntN(8000), 1_000_000_000+rand.Int64N(9_000_000_000), rand.Int64N(1e18))
		cc, _ := SplitE164(num)
		set = append(set, wire.SendStatus{SerialNo: serial, PhoneNumber: num, Fee: fee, SessionContext: req.SessionContext,
			Code: wire.CodeOk, Message: "send success", IsoCode: isoCode(cc)})
		s.env.Record(Vendor, OpSendSms, num, SendRecord{PhoneNumber: num, SmsSdkAppID: req.SmsSdkAppID, SignName: req.SignName,
			TemplateID: req.TemplateID, TemplateParamSet: req.TemplateParamSet, SessionContext: req.SessionContext, SerialNo: serial,
			SecretID: id, SignatureMethod: wire.Algorithm}, nil)
		s.receipt(num, serial, now)
	}
	writeJSON(w, wire.SendSmsResponse{Response: wire.Result{SendStatusSet: set, RequestID: uuid.NewString()}})
}

// answerPackages writes SmsPackagesStatistics's answer (e is errAnswered for success).
func (s *Sim) answerPackages(w http.ResponseWriter, id string, e *apiError) {
	if e != errAnswered {
		s.env.Record(Vendor, OpPackages, "", map[string]string{"Code": e.Code, "SecretId": id}, e)
		writeErr(w, e)
		return
	}
	s.env.Record(Vendor, OpPackages, "", map[string]string{"SecretId": id}, nil)
	var out wire.PackagesStatisticsResponse
	created := s.cfg.Now().AddDate(0, -1, 0).In(wire.Beijing)
	out.Response.SmsPackagesStatisticsSet = []wire.PackageStatistics{{PackageCreateTime: created.Format(wire.ReportTimeLayout), PackageID: 100001,
		TypeOfPackage: 2, AmountOfPackage: 10000, CurrentUsage: 0, PackageExpiredTime: created.AddDate(1, 0, 0).Format(wire.ReportTimeLayout)}}
	out.Response.RequestID = uuid.NewString()
	writeJSON(w, out)
}

func isoCode(cc string) string {
	return map[string]string{"86": "CN", "852": "HK", "853": "MO", "886": "TW", "65": "SG", "1": "US", "44": "GB", "81": "JP", "82": "KR"}[cc]
}

func (s *Sim) receipt(num, serial string, sent time.Time) {
	cc, national := SplitE164(num)
	rep := wire.StatusReport{UserReceiveTime: wire.FormatReportTime(sent.Add(s.cfg.ReportDelay)), Nationcode: cc, Mobile: national,
		ReportStatus: wire.ReportSuccess, Errmsg: "DELIVRD", Description: "用户短信送达成功", Sid: serial}
	if slices.Contains(s.cfg.Undeliverable, num) {
		rep.ReportStatus, rep.Errmsg, rep.Description = wire.ReportFail, "MK:0001", "用户短信接收失败"
	}
	s.status.AddRepeated(rep, s.cfg.Repeat)
}

// fail answers an injected fault in Tencent's shape and records it: per-number codes in
// SendStatusSet (the numbers are read from the body), every other code as the API error.
func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	if code == "" {
		code = "InternalError"
	}
	var req wire.SendSmsRequest
	body, _ := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	_ = json.Unmarshal(body, &req)
	e := errCode(code)
	s.env.Record(Vendor, OpSendSms, strings.Join(req.PhoneNumberSet, ","), map[string]string{"Code": code, "injected": "true"}, e)
	if !perNumber(code) || len(req.PhoneNumberSet) == 0 {
		writeErr(w, e)
		return
	}
	set := make([]wire.SendStatus, 0, len(req.PhoneNumberSet))
	for _, n := range req.PhoneNumberSet {
		set = append(set, wire.SendStatus{PhoneNumber: n, SessionContext: req.SessionContext, Code: code, Message: e.Message})
	}
	writeJSON(w, wire.SendSmsResponse{Response: wire.Result{SendStatusSet: set, RequestID: uuid.NewString()}})
}

// ---- numbers ----

// E164 reads a PhoneNumberSet entry as Tencent does: +<country code><number>; a mainland
// mobile may omit +86. ok is false for anything else.
func E164(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 11 && s[0] == '1' && sim.AllDigits(s) {
		s = "+86" + s
	}
	d, ok := strings.CutPrefix(s, "+")
	if !ok || len(d) < 8 || len(d) > 15 || d[0] == '0' || !sim.AllDigits(d) {
		return "", false
	}
	if rest, cn := strings.CutPrefix(d, "86"); cn && (len(rest) != 11 || rest[0] != '1' || rest[1] < '3') {
		return "", false
	}
	return s, true
}

// twoDigit are the ITU-T E.164 country codes of two digits; 1 and 7 are the one-digit codes,
// every other code has three digits.
var twoDigit = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
	"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
	"81": true, "82": true, "84": true, "86": true, "90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}

// SplitE164 splits "+8613800138000" into nationcode "86" and mobile "13800138000".
func SplitE164(e164 string) (nationcode, national string) {
	d := strings.TrimPrefix(e164, "+")
	switch {
	case d == "":
		return "", ""
	case d[0] == '1' || d[0] == '7':
		return d[:1], d[1:]
	case len(d) > 2 && twoDigit[d[:2]]:
		return d[:2], d[2:]
	case len(d) > 3:
		return d[:3], d[3:]
	}
	return "", d
}

// ---- customers ----

// Channel returns the customers' side: Write posts a reply callback.
func (s *Sim) Channel() sim.Channel { return sim.NewChannel("sms", s.writeReply) }

// writeReply posts one reply callback from c.Phone (nationcode and national number) and returns the
// connector's answer.
func (s *Sim) writeReply(ctx context.Context, c sim.Customer, text string) error {
	if s.cfg.ReplyURL == "" {
		return errors.New("tencent simulator: no reply URL (set SANDBOX_HOOK_BASE or SANDBOX_TENCENT_REPLY_URL)")
	}
	num, ok := E164(c.Phone)
	if !ok {
		return fmt.Errorf("tencent simulator: customer %d has no number Tencent can carry", c.ID)
	}
	cc, national := SplitE164(num)
	body, err := json.Marshal(wire.Reply{Extend: s.cfg.Extend, Mobile: national, Nationcode: cc, Sign: s.cfg.ReplySign,
		Text: text, Time: s.cfg.Now().Unix()})
	if err != nil {
		return err
	}
	return sim.PostJSON(ctx, s.cfg.Client, s.cfg.ReplyURL, body)
}
